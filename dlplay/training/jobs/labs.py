"""The labs that run as short jobs in a worker process, not in the server: a zip's import and every After-training
lab. Each kind reads plain parameters and the files in its folder, reports progress, writes its output files there
and returns a plain (JSON-ready) result; `read_result` turns that back into the lab's own dataclasses for a page.
Nothing crosses between processes as a pickle.

A lab trains on the CPU unless its request names a GPU (the lane gives none today): labs run beside the scheduler's
training runs, and a GPU taken by a lab is one the scheduler does not know is busy."""
import json
import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict
from multiprocessing.connection import Connection
from pathlib import Path

import torch

from dlplay.after_training.compress import Compressed, compression_report
from dlplay.after_training.deploy import Agreement, Variant, deployment_report, report_images
from dlplay.after_training.federated import FederatedLab, LocalTraining, Round, federated_lab
from dlplay.after_training.transfer import LabResult, transfer_lab
from dlplay.checkpoint import ModelFileError, load_model
from dlplay.data import DATASETS, dataset_bytes, load_dataset
from dlplay.device import DeviceInfo, is_out_of_memory, pick_device
from dlplay.training.jobs.gpus import worker_visible_devices
from dlplay.userdata import ZipRejected, import_zip

ZIP_FILE, DATASET_FILE = "upload.zip", "dataset.safetensors"
LOG_FILE = "lab.log"
REPORT_SECONDS = 0.25  # progress reports at most this often
LAB_NICENESS = 5  # below training runs: a lab beside a run takes what the run leaves, so runs keep their pace
Report = Callable[[float, str], None]  # (fraction done 0..1, what is happening)
OUT_OF_MEMORY = "The lab ran out of memory; run it again when fewer labs and runs are going."


def import_zip_lab(params: dict, folder: Path, report: Report, device: DeviceInfo) -> dict:
    """A zip of class folders (the folder's upload.zip) -> dataset.safetensors, and the files skipped and why."""
    report(0.0, "Unpacking and decoding the images...")
    with open(folder / ZIP_FILE, "rb") as source:
        imported = import_zip(source, image_size=params["image_size"], name=params["name"])
    (folder / DATASET_FILE).write_bytes(dataset_bytes(imported.dataset))
    (folder / ZIP_FILE).unlink()  # the images live on in the dataset file only
    return {"skipped": [list(pair) for pair in imported.skipped]}


def deploy_lab(params: dict, folder: Path, report: Report, device: DeviceInfo) -> dict:
    """Export a model file to ONNX (and int8), check and time every form on its test images."""
    model, card = load_model(params["model_file"])
    data = load_dataset(card.dataset) if card.dataset in DATASETS else None
    report(0.1, "Exporting to ONNX, checking, quantizing and timing...")
    images, labels, calibration = report_images(card, data, params["quantize"])
    variants = deployment_report(model, card, folder, images, labels, calibration)
    return {"variants": [{**asdict(v), "path": v.path.name if v.path else None} for v in variants]}


def compress_lab(params: dict, folder: Path, report: Report, device: DeviceInfo) -> dict:
    """Prune, quantize and distill a model file, each form measured on its dataset's test images."""
    model, card = load_model(params["model_file"])
    int8 = (folder / params["int8_file"]).read_bytes() if params.get("int8_file") else None
    report(0.1, "Pruning, quantizing, distilling and timing...")
    forms = compression_report(model, card, load_dataset(card.dataset), device, params["sparsities"],
                               params["quantize"], params["student_epochs"], int8=int8)
    return {"forms": [asdict(f) for f in forms]}


ARMS = {"federated": "FedAvg", "pooled": "centralised (all images pooled)"}


def federated_lab_job(params: dict, folder: Path, report: Report, device: DeviceInfo) -> dict:
    """FedAvg on mnist5k split across clients, beside the same training on the pooled images."""
    rounds = params["rounds"]

    def tick(arm: str, done: Round) -> None:
        finished = done.round + (rounds if arm == "pooled" else 0)
        report(finished / (2 * rounds), f"{ARMS[arm]}: round {done.round} of {rounds}")

    lab = federated_lab(load_dataset("mnist5k"), device, params["clients"], params["alpha"], rounds,
                        LocalTraining(**params["local"]), on_round=tick)
    return asdict(lab)


def transfer_lab_job(params: dict, folder: Path, report: Report, device: DeviceInfo) -> dict:
    """Digits 0-4 learnt, then 5-9 from few images: from scratch against from the 0-4 network's weights."""
    report(0.05, "Pre-training on 0–4, then six runs on 5–9...")
    pretrained, results = transfer_lab(load_dataset("mnist5k"), device, freeze=params["freeze"],
                                       pretrain_epochs=params["pretrain_epochs"])
    return {"pretrained": pretrained, "results": [asdict(r) for r in results]}


KINDS: dict[str, Callable[[dict, Path, Report, DeviceInfo], dict]] = {
    "import_zip": import_zip_lab, "deploy": deploy_lab, "compress": compress_lab, "federated": federated_lab_job,
    "transfer": transfer_lab_job}
EXPECTED = (ValueError, ZipRejected, ModelFileError, OSError)  # what a lab says in one sentence (a ValueError...)


def read_result(kind: str, plain: dict, folder: Path):
    """A finished lab's result as its page uses it (the lab's own dataclasses, files as paths in `folder`)."""
    if kind == "import_zip":
        return [tuple(pair) for pair in plain["skipped"]]
    if kind == "deploy":
        return [Variant(**{**v, "path": folder / v["path"] if v["path"] else None,
                           "agreement": Agreement(**v["agreement"])}) for v in plain["variants"]]
    if kind == "compress":
        return [Compressed(**f) for f in plain["forms"]]
    if kind == "federated":
        return FederatedLab(plain["mix"], [Round(**r) for r in plain["federated"]],
                            None if plain["pooled"] is None else [Round(**r) for r in plain["pooled"]])
    if kind == "transfer":
        return plain["pretrained"], [LabResult(**r) for r in plain["results"]]
    raise ValueError(f"unknown lab {kind!r}")


def lab_device(gpu: int | None) -> DeviceInfo:
    """The device a lab computes on: the CPU, unless it was given a GPU (then its worker sees that one alone)."""
    return pick_device("cpu") if gpu is None else pick_device("auto")


def serve_lab(conn: Connection, request: dict) -> None:
    """Run the lab in `request` (kind, parameters, folder, threads, and optionally a GPU) in this process, reporting
    over `conn`."""
    gpu = request.get("gpu")
    # Before anything touches CUDA: the given GPU alone, or none (no lab grabs memory on a GPU a run trains on).
    os.environ["CUDA_VISIBLE_DEVICES"] = worker_visible_devices(gpu, os.environ.get("CUDA_VISIBLE_DEVICES"))
    folder = Path(request["folder"])
    log = open(folder / LOG_FILE, "a", buffering=1)
    os.dup2(log.fileno(), 1)  # stray prints and warnings go to the lab's log, not the server's terminal
    os.dup2(log.fileno(), 2)
    logging.basicConfig(stream=sys.stderr, level=logging.INFO)
    torch.set_num_threads(request["threads"])
    if hasattr(os, "nice"):
        os.nice(LAB_NICENESS)
    lock, last = threading.Lock(), [0.0]

    def emit(event: dict) -> None:
        with lock:
            conn.send_bytes(json.dumps(event).encode())

    def report(fraction: float, text: str) -> None:
        now = time.monotonic()
        if now - last[0] >= REPORT_SECONDS:
            last[0] = now
            emit({"type": "progress", "fraction": min(1.0, max(0.0, fraction)), "text": text})

    emit({"type": "hello", "pid": os.getpid()})
    try:
        result = KINDS[request["kind"]](request["params"], folder, report, lab_device(gpu))
    except Exception as err:
        message = _failure(err)
        logging.exception("lab failed")
        emit({"type": "done", "status": "failed", "message": message})
        return
    emit({"type": "done", "status": "finished", "message": "Done.", "result": result})


def _failure(err: Exception) -> str:
    """What a failed lab tells its page, in one sentence."""
    if is_out_of_memory(err):
        return OUT_OF_MEMORY
    if isinstance(err, EXPECTED):  # the input cannot be used
        return str(err)
    return f"The lab failed: {err}"

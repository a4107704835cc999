"""After training: take a trained model out of the playground (deployment to ONNX and ONNX Runtime; pruning,
int8 and distillation), train one without pooling anyone's data (federated averaging), and reuse one for new
classes with few images (transfer learning)."""
import tempfile

import pandas as pd
import streamlit as st
import torch

from dlplay.compress import compression_report
from dlplay.data import DATASETS
from dlplay.deploy import (
    CALIBRATION_IMAGES,
    INPUT,
    LATENCY_BATCH,
    OPSET,
    OUTPUT,
    RANDOM_IMAGES,
    deployment_report,
    report_images,
)
from dlplay.device import pick_device
from dlplay.federated import LocalTraining, centralised, client_indices, fedavg, split_clients
from dlplay.models import build_model
from dlplay.transfer import FREEZE, transfer_lab
from ui import charts, state

REPORTS = "after.reports"  # model label -> its measured forms and their files, under a key no widget owns
COMPRESSED = "after.compressed"  # model label -> its compressed forms, measured
SPARSITIES = [0.25, 0.5, 0.75, 0.9, 0.95]
FEDERATED = "after.federated"  # the last FedAvg run: settings, class mix and both histories
ALPHAS = [0.05, 0.1, 0.3, 1.0, 3.0, 10.0]
TRANSFER = "after.transfer"  # the last transfer lab: its settings and results


def measure(label: str, model, card, quantize: bool) -> None:
    """Export the model (and quantize it), measure every form, and keep the table and the files' bytes."""
    data = state.dataset(card.dataset) if card.dataset in DATASETS else None
    images, labels, calibration = report_images(card, data, quantize)
    with tempfile.TemporaryDirectory(prefix="dlplay-after-") as folder:
        variants = deployment_report(model, card, folder, images, labels, calibration)
        files = {v.path.name: v.path.read_bytes() for v in variants if v.path is not None}
    st.session_state.setdefault(REPORTS, {})[label] = (variants, files)


def deploy_section(label: str, model, card) -> None:
    st.header("1. Deploy: ONNX and ONNX Runtime")
    st.caption("ONNX is the common file format for trained networks: ONNX Runtime runs it on servers, phones and "
               "browsers without PyTorch. Export your model, check the file, and see that ONNX Runtime computes the "
               "same outputs; then quantize it to 8-bit integers, which makes it about 3× smaller.")
    known = card.dataset in DATASETS
    quantize = st.checkbox(f"Also quantize to int8 (calibrated on {CALIBRATION_IMAGES} training images)", value=known,
                           disabled=not known, key="after.quantize",
                           help="Static quantization by ONNX Runtime: int8 weights per channel, uint8 activations "
                                "whose ranges come from the calibration images.")
    if not known:
        st.caption(f"This model's images ({card.dataset or 'unknown'}) are not on the server: it is compared with "
                   f"PyTorch on {RANDOM_IMAGES} random images, and int8 needs real ones for calibration.")
    if st.button("Export and measure", type="primary", key="after.export"):
        with st.spinner("Exporting to ONNX, checking, quantizing and timing (about 10 s)..."):
            measure(label, model, card, quantize and known)
    found = st.session_state.get(REPORTS, {}).get(label)
    if found is None:
        return
    variants, files = found
    shape = "×".join(map(str, card.input_shape))
    st.success(f"The onnx checker passed. Opset {OPSET}; input “{INPUT}”: N×{shape} images scaled to 0..1 (any N); "
               f"output “{OUTPUT}”: {len(card.class_names)} class scores.")
    reference = variants[0]  # PyTorch itself: nothing to compare it with
    table = pd.DataFrame([{"form": v.name + (" (the reference)" if v is reference else ""),
                           "size (KB)": v.size_bytes / 1024, "accuracy": v.accuracy,
                           "1 image (ms)": v.latency_one * 1000, f"{LATENCY_BATCH} images (ms)": v.latency_batch * 1000,
                           "max |Δ logit|": None if v is reference else v.agreement.max_difference,
                           "same class": None if v is reference else v.agreement.same_prediction} for v in variants])
    st.dataframe(table, hide_index=True, column_config={
        "size (KB)": st.column_config.NumberColumn(format="%.1f"),
        "accuracy": st.column_config.NumberColumn(format="percent", help="on the model's test images"),
        "1 image (ms)": st.column_config.NumberColumn(format="%.3f"),
        f"{LATENCY_BATCH} images (ms)": st.column_config.NumberColumn(format="%.2f"),
        "max |Δ logit|": st.column_config.NumberColumn(format="%.1e", help="the largest difference from PyTorch's "
                                                                            "class scores on the same images"),
        "same class": st.column_config.NumberColumn(format="percent", help="how often it picks PyTorch's class")})
    st.caption("PyTorch's size is its .safetensors file. Times are medians of 30 runs on this server's CPU. float32 "
               "ONNX Runtime matches PyTorch to rounding; int8 trades a little accuracy for size.")
    names = [v.name for v in variants]
    left, right = st.columns(2)
    left.plotly_chart(charts.layer_bars(names, [v.size_bytes / 1024 for v in variants], "file size (KB)"),
                      key="after.sizes")
    right.plotly_chart(charts.layer_bars(names, [v.latency_one * 1000 for v in variants], "1 image (ms)"),
                       key="after.latency")
    columns = st.columns(len(files))
    for column, (name, data) in zip(columns, files.items(), strict=True):
        column.download_button(f"Download {name}", data, file_name=name, mime="application/octet-stream",
                               key=f"after.download.{name}")
    st.code(f"""import numpy as np, onnxruntime as ort
session = ort.InferenceSession("model.onnx")
images = np.zeros((1, {", ".join(map(str, card.input_shape))}), np.float32)  # your pictures, scaled to 0..1
scores = session.run(["{OUTPUT}"], {{"{INPUT}": images}})[0]
print({list(card.class_names)!r}[scores.argmax(1)[0]])""", language="python")


def compress_section(label: str, model, card) -> None:
    st.header("2. Compress: prune, quantize, distill")
    st.caption("Three ways to a smaller model. Pruning sets the weights with the smallest |w| to zero across all "
               "conv and dense layers (torch.nn.utils.prune, global L1, made permanent). int8 quantization stores "
               "weights and activations as 8-bit integers (ONNX Runtime, calibrated on training images). "
               "Distillation trains a small student CNN (a seventh of the parameters) to copy this model's softened "
               "outputs (temperature 4) as well as the labels.")
    if card.dataset not in DATASETS:
        st.info(f"Compression is measured on the model's test images, and {card.dataset or 'its dataset'} is not on "
                "the server.")
        return
    a, b, c = st.columns([2, 1, 1])
    chosen = a.multiselect("Pruning sparsities (share of weights set to zero)", SPARSITIES, default=[0.5, 0.9],
                           format_func=lambda s: f"{s:.0%}", key="after.sparsities")
    quantize = b.checkbox("int8 quantization", value=True, key="after.int8")
    epochs = c.slider("Student epochs (0: no student)", 0, 10, 3, key="after.student_epochs")
    if st.button("Compress and measure", key="after.compress", disabled=not (chosen or quantize or epochs)):
        with st.spinner("Pruning, quantizing, distilling and timing..."):
            st.session_state.setdefault(COMPRESSED, {})[label] = compression_report(
                model, card, state.dataset(card.dataset), pick_device("auto"), chosen, quantize, epochs)
    forms = st.session_state.get(COMPRESSED, {}).get(label)
    if forms is None:
        return
    st.dataframe(pd.DataFrame([{"form": f.name, "file (KB)": f.file_bytes / 1024, "gzip (KB)": f.gzip_bytes / 1024,
                                "non-zero parameters": f.parameters, "1 image (ms)": f.latency_one * 1000,
                                f"{LATENCY_BATCH} images (ms)": f.latency_batch * 1000, "accuracy": f.accuracy}
                               for f in forms]), hide_index=True, column_config={
        "file (KB)": st.column_config.NumberColumn(format="%.1f"),
        "gzip (KB)": st.column_config.NumberColumn(format="%.1f", help="the file gzip-compressed: pruning's zeros only "
                                                                        "shrink a compressed file"),
        "1 image (ms)": st.column_config.NumberColumn(format="%.3f"),
        f"{LATENCY_BATCH} images (ms)": st.column_config.NumberColumn(format="%.2f"),
        "accuracy": st.column_config.NumberColumn(format="percent", help="on the model's test images")})
    st.plotly_chart(charts.size_accuracy([f.name for f in forms], [f.gzip_bytes / 1024 for f in forms],
                                         [f.accuracy for f in forms]), key="after.compress_chart")
    st.caption("Times are medians on this server's CPU (PyTorch eager for the PyTorch forms, ONNX Runtime for int8). "
               "Pruned weights are still stored and multiplied, so pruning alone is not faster: sparse kernels or "
               "structured pruning (whole filters) are what turn zeros into speed.")


def run_federated(clients: int, alpha: float | None, rounds: int, local: LocalTraining) -> None:
    """FedAvg on mnist5k split across clients, and the same training on the pooled images, from the same start."""
    data = state.dataset("mnist5k")
    device = pick_device("auto")
    mean, std = data.channel_stats()
    indices = client_indices(data.train.labels, clients, alpha, seed=0)
    mix = [torch.bincount(data.train.labels[torch.as_tensor(i)], minlength=data.num_classes).tolist()
           for i in indices]
    bar = st.progress(0.0, text="Federated rounds...")
    steps = 2 * rounds

    def tick(done: int, what: str):
        return lambda r: bar.progress((done + r.round) / steps, text=f"{what}: round {r.round} of {rounds}")

    histories = {}
    for offset, (name, run) in enumerate((
            ("FedAvg", lambda m, on: fedavg(m, split_clients(data.train, indices), data.test, device, rounds, local,
                                            on_round=on)),
            ("centralised (all images pooled)", lambda m, on: centralised(m, data.train, data.test, device, rounds,
                                                                          local, on_round=on)))):
        model = build_model("small-cnn", data.input_shape, data.num_classes, mean, std, seed=0)
        histories[name] = run(model, tick(offset * rounds, name))
    bar.empty()
    st.session_state[FEDERATED] = (clients, alpha, mix, histories)


def federated_section() -> None:
    st.header("3. Privacy: federated averaging")
    st.caption("Learners' phones or hospitals keep their images; each trains a copy of the model on its own and sends "
               "back only weights, which a server averages (FedAvg). Here mnist5k's training digits are dealt out to "
               "simulated clients and a fresh small CNN is trained this way, next to the same training on all the "
               "images pooled.")
    a, b, c, d = st.columns(4)
    clients = a.slider("Clients", 2, 20, 10, key="after.clients")
    skewed = b.radio("Split", ["IID (every client alike)", "skewed (Dirichlet)"], key="after.split") != (
        "IID (every client alike)")
    alpha = b.select_slider("α (smaller: fewer classes per client)", ALPHAS, value=0.1, key="after.alpha",
                            disabled=not skewed)
    rounds = c.slider("Rounds", 1, 20, 5, key="after.rounds")
    epochs = d.slider("Local epochs per round", 1, 3, 1, key="after.local_epochs")
    if st.button("Run FedAvg", type="primary", key="after.federate"):
        run_federated(clients, alpha if skewed else None, rounds, LocalTraining(epochs=epochs))
    found = st.session_state.get(FEDERATED)
    if found is None:
        return
    clients, alpha, mix, histories = found
    split = "IID" if alpha is None else f"skewed, α = {alpha}"
    left, right = st.columns(2)
    left.plotly_chart(charts.lines({name: [r.accuracy for r in h] for name, h in histories.items()},
                                   range(1, len(next(iter(histories.values()))) + 1), "round (epochs of training)",
                                   title=f"test accuracy, {clients} clients, {split}", log_y=False),
                      key="after.federated_chart")
    right.plotly_chart(charts.client_classes(mix, state.dataset("mnist5k").class_names), key="after.client_mix")
    final = {name: h[-1].accuracy for name, h in histories.items()}
    st.markdown(" · ".join(f"{name}: **{accuracy:.1%}**" for name, accuracy in final.items()))
    st.caption("What FedAvg protects: the images never leave their client. What it does not: the weights a client "
               "sends can still leak facts about its images (membership, even reconstructions); secure aggregation "
               "and differential privacy are what guard those. Skewed clients also pull the model apart, so it "
               "learns slower than on pooled data.")


def transfer_section() -> None:
    st.header("4. Transfer learning: not enough data?")
    st.caption("The article's FAQ answer: start from a network trained on something else. Here a small CNN learns "
               "digits 0–4, then digits 5–9 are learnt from only 10, 50 or 200 images each: once from scratch and "
               "once from the 0–4 network's weights with a new head, both on the very same images and for the same "
               "number of steps.")
    a, b = st.columns(2)
    freeze = a.radio("While learning 5–9, keep fixed", FREEZE, horizontal=True, key="after.freeze",
                     format_func={"none": "nothing (fine-tune all)", "features": "the conv layers",
                                  "all but the head": "all but the new head"}.__getitem__)
    epochs = b.slider("Pre-training epochs on 0–4", 1, 5, 3, key="after.pretrain_epochs")
    if st.button("Run the lab", type="primary", key="after.transfer_run"):
        with st.spinner("Pre-training on 0–4, then six runs on 5–9 (about half a minute)..."):
            st.session_state[TRANSFER] = (freeze, transfer_lab(state.dataset("mnist5k"), pick_device("auto"),
                                                               freeze=freeze, pretrain_epochs=epochs))
    found = st.session_state.get(TRANSFER)
    if found is None:
        return
    frozen, (pretrained, results) = found
    st.plotly_chart(charts.compare_bars([f"{r.per_class} per class" for r in results],
                                        {"from scratch": [r.scratch for r in results],
                                         "transferred from 0–4": [r.transferred for r in results]},
                                        "test accuracy on digits 5–9", percent=True), key="after.transfer_chart")
    gains = ", ".join(f"{r.transferred - r.scratch:+.1%} with {r.per_class}" for r in results)
    st.markdown(f"The 0–4 network reached **{pretrained:.1%}** on its own test digits. Transferred minus scratch "
                f"(kept fixed: {frozen}): {gains} images per class.")
    st.caption("Transfer helps most when the new data is scarce and the old features fit it; keeping layers fixed "
               "protects them from few images but stops them adapting. With plenty of images, scratch catches up.")


st.title("After training")
st.caption("Where a trained model goes next (the article's §8): out of PyTorch and onto any device, and smaller.")
models = state.trained_models()
picked = st.selectbox("Model", list(models), key="after.model")
chosen_model, chosen_card = models[picked]()
deploy_section(picked, chosen_model, chosen_card)
compress_section(picked, chosen_model, chosen_card)
federated_section()
transfer_section()

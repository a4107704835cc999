"""After training: take a trained model out of the playground (deployment to ONNX and ONNX Runtime; pruning,
int8 and distillation), train one without pooling anyone's data (federated averaging), and reuse one for new
classes with few images (transfer learning)."""
from dataclasses import asdict, replace
from pathlib import Path

import pandas as pd
import streamlit as st

from dlplay.after_training.compress import student_share
from dlplay.after_training.deploy import (
    CALIBRATION_IMAGES,
    INPUT,
    INT8_FILE,
    LATENCY_BATCH,
    OPSET,
    OUTPUT,
    RANDOM_IMAGES,
)
from dlplay.after_training.federated import LocalTraining
from dlplay.after_training.transfer import FREEZE
from dlplay.checkpoint import ModelCard, read_card
from dlplay.data import DATASETS
from dlplay.training.jobs.labs import ARMS, read_result
from dlplay.training.jobs.spec import RunStatus
from ui import chart_words, charts, state, tables
from ui.i18n import N_, _, say, translated
from ui.labs import follow, start_lab
from ui.state import AfterTrainingState

PAGE = AfterTrainingState()
SPARSITIES = [0.25, 0.5, 0.75, 0.9, 0.95]
ALPHAS = [0.05, 0.1, 0.3, 1.0, 3.0, 10.0]
FREEZE_LABELS = {"none": N_("nothing (fine-tune all)"), "features": N_("the conv layers"),
                 "all but the head": N_("all but the new head")}


def run_lab(section: str, subject, kind: str, params: dict, files: dict[str, bytes] | None = None) -> None:
    """Start a section's lab in the worker lane, for `subject` (the model, or the settings it ran with)."""
    lab = start_lab(kind, params, files)
    if lab is not None:
        PAGE.labs[section] = (subject, lab)


def lab_result(section: str, subject):
    """The section's lab for `subject`: followed live while it waits or runs; once it has finished, its result
    (read back as the lab's own dataclasses, its files as paths), after which the lab and its folder are let go."""
    found = PAGE.labs.get(section)
    if found is None or found[0] != subject:
        return None
    lab = found[1]
    snapshot = follow(lab, key=PAGE.key(section))
    if snapshot.status.active:
        return None
    del PAGE.labs[section]
    return read_result(lab.kind, snapshot.result, lab.folder) if snapshot.status is RunStatus.FINISHED else None


def deploy_section(label: str, card: ModelCard) -> None:
    st.header(_("1. Deploy: ONNX and ONNX Runtime"))
    st.caption(_("ONNX is the common file format for trained networks: ONNX Runtime runs it on servers, phones and "
                 "browsers without PyTorch. Export your model, check the file, and see that ONNX Runtime computes "
                 "the same outputs; then quantize it to 8-bit integers, which makes it about 3× smaller."))
    known = card.dataset in DATASETS
    quantize = st.checkbox(_("Also quantize to int8 (calibrated on {count} training images)").format(
        count=CALIBRATION_IMAGES), value=known, disabled=not known, key="after_training.quantize",
        help=_("Static quantization by ONNX Runtime: int8 weights per channel, uint8 activations whose ranges come "
               "from the calibration images."))
    if not known:
        st.caption(_("This model's images ({dataset}) are not on the server: it is compared with PyTorch on {count} "
                     "random images, and int8 needs real ones for calibration.").format(
            dataset=card.dataset or _("unknown"), count=RANDOM_IMAGES))
    if st.button(_("Export and measure"), type="primary", key="after_training.export"):
        run_lab("deploy", label, "deploy", {"model_file": str(state.trained_model_file(label)),
                                            "quantize": quantize and known})
    measured = lab_result("deploy", label)
    if measured is not None:  # the files' bytes are kept: the lab's folder goes with it
        PAGE.reports[label] = ([replace(v, path=Path(v.path.name) if v.path else None) for v in measured],
                               {v.path.name: v.path.read_bytes() for v in measured if v.path is not None})
    found = PAGE.reports.get(label)
    if found is None:
        return
    variants, files = found
    shape = "×".join(map(str, card.input_shape))
    st.success(_("The onnx checker passed. Opset {opset}; input “{input}”: N×{shape} images scaled to 0..1 (any "
                 "N); output “{output}”: {count} class scores.").format(opset=OPSET, input=INPUT, shape=shape,
                                                                       output=OUTPUT, count=len(card.class_names)))
    reference = variants[0]  # PyTorch itself: nothing to compare it with
    size, accuracy, one, batch, same = (_("size (KB)"), _("accuracy"), _("1 image (ms)"),
                                        _("{count} images (ms)").format(count=LATENCY_BATCH), _("same class"))
    table = pd.DataFrame([{_("form"): say(v.name) + (_(" (the reference)") if v is reference else ""),
                           size: v.size_bytes / 1024, accuracy: v.accuracy,
                           one: v.latency_one * 1000, batch: v.latency_batch * 1000,
                           "max |Δ logit|": None if v is reference else v.agreement.max_difference,
                           same: None if v is reference else v.agreement.same_prediction} for v in variants])
    tables.table(table, {
        size: tables.decimals(1), accuracy: tables.percent(help=_("on the model's test images")),
        one: tables.decimals(3), batch: tables.decimals(2),
        "max |Δ logit|": tables.scientific(help=_("the largest difference from PyTorch's class scores on the same "
                                                  "images")),
        same: tables.percent(help=_("how often it picks PyTorch's class"))})
    st.caption(_("PyTorch's size is its .safetensors file. Times are medians of 30 runs on this server's CPU. "
                 "float32 ONNX Runtime matches PyTorch to rounding; int8 trades a little accuracy for size."))
    names = [say(v.name) for v in variants]
    left, right = st.columns(2)
    chart_words.chart(charts.layer_bars(names, [v.size_bytes / 1024 for v in variants], _("file size (KB)")),
                      "after_training.sizes", left)
    chart_words.chart(charts.layer_bars(names, [v.latency_one * 1000 for v in variants], _("1 image (ms)")),
                      "after_training.latency", right)
    columns = st.columns(len(files))
    for column, (name, data) in zip(columns, files.items(), strict=True):
        column.download_button(_("Download {name}").format(name=name), data, file_name=name,
                               mime="application/octet-stream", key=f"after_training.download.{name}")
    comment = _("your pictures, scaled to 0..1")
    st.code(f"""import numpy as np, onnxruntime as ort
session = ort.InferenceSession("model.onnx")
images = np.zeros((1, {", ".join(map(str, card.input_shape))}), np.float32)  # {comment}
scores = session.run(["{OUTPUT}"], {{"{INPUT}": images}})[0]
print({list(card.class_names)!r}[scores.argmax(1)[0]])""", language="python", wrap_lines=True)


def compress_section(label: str, card: ModelCard) -> None:
    st.header(_("2. Compress: prune, quantize, distill"))
    student, teacher = student_share(card)
    st.caption(_("Three ways to a smaller model. Pruning sets the weights with the smallest |w| to zero across all "
                 "conv and dense layers (torch.nn.utils.prune, global L1, made permanent). int8 quantization stores "
                 "weights and activations as 8-bit integers (ONNX Runtime, calibrated on training images). "
                 "Distillation trains a small student CNN ({student} parameters, {share} of this model's {teacher}) "
                 "to copy this model's softened outputs (temperature 4) as well as the labels.").format(
        student=f"{student:,}", teacher=f"{teacher:,}", share=f"{student / teacher:.1%}"))
    if card.dataset not in DATASETS:
        st.info(_("Compression is measured on the model's test images, and {dataset} is not on the server.").format(
            dataset=card.dataset or _("its dataset")))
        return
    a, b, c = st.columns([2, 1, 1])
    chosen = a.multiselect(_("Pruning sparsities (share of weights set to zero)"), SPARSITIES, default=[0.5, 0.9],
                           format_func=lambda s: f"{s:.0%}", key="after_training.sparsities")
    quantize = b.checkbox(_("int8 quantization"), value=True, key="after_training.int8")
    epochs = c.slider(_("Student epochs (0: no student)"), 0, 10, 3, key="after_training.student_epochs")
    if st.button(_("Compress and measure"), key="after_training.compress", disabled=not (chosen or quantize or epochs)):
        int8 = PAGE.reports.get(label, (None, {}))[1].get(INT8_FILE)  # the Deploy section's int8 file, if made
        run_lab("compress", label, "compress",
                {"model_file": str(state.trained_model_file(label)), "sparsities": chosen, "quantize": quantize,
                 "student_epochs": epochs, "int8_file": INT8_FILE if int8 else None},
                {INT8_FILE: int8} if int8 else None)
    measured = lab_result("compress", label)
    if measured is not None:
        PAGE.compressed[label] = measured
    forms = PAGE.compressed.get(label)
    if forms is None:
        return
    file, gzipped, one, batch, accuracy, parameters = (
        _("file (KB)"), _("gzip (KB)"), _("1 image (ms)"), _("{count} images (ms)").format(count=LATENCY_BATCH),
        _("accuracy"), _("non-zero parameters"))
    tables.table([{_("form"): say(f.name), file: f.file_bytes / 1024, gzipped: f.gzip_bytes / 1024,
                   parameters: f.parameters, one: f.latency_one * 1000, batch: f.latency_batch * 1000,
                   accuracy: f.accuracy} for f in forms], {
        file: tables.decimals(1),
        gzipped: tables.decimals(1, help=_("the file gzip-compressed: pruning's zeros only shrink a compressed file")),
        parameters: tables.whole(), one: tables.decimals(3), batch: tables.decimals(2),
        accuracy: tables.percent(help=_("on the model's test images"))})
    chart_words.chart(charts.size_accuracy([say(f.name) for f in forms], [f.gzip_bytes / 1024 for f in forms],
                                           [f.accuracy for f in forms]), "after_training.compress_chart")
    st.caption(_("Times are medians on this server's CPU (PyTorch eager for the PyTorch forms, ONNX Runtime for "
                 "int8). Pruned weights are still stored and multiplied, so pruning alone is not faster: sparse "
                 "kernels or structured pruning (whole filters) are what turn zeros into speed."))


def federated_section() -> None:
    st.header(_("3. Privacy: federated averaging"))
    st.caption(_("The images stay where they are, on people's phones or in each hospital: every client trains a copy "
                 "of the model on its own images and sends back its weights and how many images it trained on, and "
                 "a server averages the weights, each by its client's share of the images (FedAvg). Here mnist5k's "
                 "training digits are dealt out to simulated clients and a fresh small CNN is trained this way, next "
                 "to the same training on all the images pooled."))
    a, b, c, d = st.columns(4)
    clients = a.slider(_("Clients"), 2, 20, 10, key="after_training.clients")
    skewed = b.radio(_("Split"), [False, True], key="after_training.split",
                     format_func=translated({False: N_("IID (every client alike)"), True: N_("skewed (Dirichlet)")}))
    alpha = b.select_slider(_("α (smaller: fewer classes per client)"), ALPHAS, value=0.1,
                            key="after_training.alpha") if skewed else None  # IID has no α: none is shown
    rounds = c.slider(_("Communication rounds"), 1, 20, 5, key="after_training.rounds")
    epochs = d.slider(_("Local epochs per round"), 1, 3, 1, key="after_training.local_epochs")
    if st.button(_("Run FedAvg"), type="primary", key="after_training.federate"):
        split = alpha if skewed else None
        run_lab("federated", (clients, split, epochs), "federated",
                {"clients": clients, "alpha": split, "rounds": rounds, "local": asdict(LocalTraining(epochs=epochs))})
    subject = PAGE.labs.get("federated", (None,))[0]
    lab = lab_result("federated", subject)
    if lab is not None:
        PAGE.federated = (*subject, lab.mix, {ARMS["federated"]: lab.federated, ARMS["pooled"]: lab.pooled})
    found = PAGE.federated
    if found is None:
        return
    clients, alpha, epochs, mix, histories = found
    split = _("IID") if alpha is None else _("skewed, α = {alpha}").format(alpha=alpha)
    left, right = st.columns(2)
    chart_words.chart(charts.lines({_(name): [r.accuracy for r in h] for name, h in histories.items()},
                                   range(1, len(next(iter(histories.values()))) + 1),
                                   (_("communication round (1 local epoch each)") if epochs == 1 else
                                    _("communication round ({epochs} local epochs each)").format(epochs=epochs)),
                                   title=_("test accuracy, {clients} clients, {split}").format(clients=clients,
                                                                                               split=split),
                                   log_y=False),
                      "after_training.federated_chart", left)
    chart_words.chart(charts.client_classes(mix, state.dataset("mnist5k").class_names), "after_training.client_mix",
                      right)
    final = {_(name): h[-1].accuracy for name, h in histories.items()}
    st.markdown(" · ".join(_("{name}: **{accuracy}**").format(name=name, accuracy=f"{accuracy:.1%}")
                           for name, accuracy in final.items()))
    st.caption((_("In a communication round every client trains one local epoch on its own images, then the server "
                  "averages; the pooled model trains one epoch on all the images, so after each round both have passed "
                  "over every image equally often.") if epochs == 1 else
                _("In a communication round every client trains {epochs} local epochs on its own images, then the "
                  "server averages; the pooled model trains {epochs} epochs on all the images, so after each round "
                  "both have passed over every image equally often.")).format(epochs=epochs))
    st.caption(_("What FedAvg protects: the images never leave their client. What it does not: the weights a client "
                 "sends can still leak facts about its images (membership, even reconstructions); secure "
                 "aggregation and differential privacy are what guard those. Skewed clients also pull the model "
                 "apart, so it learns slower than on pooled data."))


def transfer_section() -> None:
    st.header(_("4. Transfer learning: not enough data?"))
    st.caption(_("The article's FAQ explains why deep learning needs a lot of data (§9.1: the more examples, the "
                 "more patterns a network learns and the better it generalizes), and §3.1 notes that weights can "
                 "start from a pre-trained model instead of at random. What to do with few images is not in the "
                 "article: transfer learning is the usual answer in practice (see Yosinski et al., 2014, “How "
                 "transferable are features in deep neural networks?”): start from a network trained on something "
                 "else. Here a small CNN learns digits 0–4, then digits 5–9 are learnt from only 10, 50 or 200 images "
                 "each: once from scratch and once from the 0–4 network's weights with a new head, both on the very "
                 "same images and for the same number of steps."))
    a, b = st.columns(2)
    freeze = a.radio(_("While learning 5–9, keep fixed"), FREEZE, horizontal=True, key="after_training.freeze",
                     format_func=translated(FREEZE_LABELS))
    epochs = b.slider(_("Pre-training epochs on 0–4"), 1, 5, 3, key="after_training.pretrain_epochs")
    if st.button(_("Run the lab"), type="primary", key="after_training.transfer_run"):
        run_lab("transfer", freeze, "transfer", {"freeze": freeze, "pretrain_epochs": epochs})
    subject = PAGE.labs.get("transfer", (None,))[0]
    result = lab_result("transfer", subject)
    if result is not None:
        PAGE.transfer = (subject, result)
    found = PAGE.transfer
    if found is None:
        return
    frozen, (pretrained, results) = found
    chart_words.chart(charts.compare_bars([_("{count} per class").format(count=r.per_class) for r in results],
                                          {_("from scratch"): [r.scratch for r in results],
                                           _("transferred from 0–4"): [r.transferred for r in results]},
                                          _("test accuracy on digits 5–9"), percent=True),
                      "after_training.transfer_chart")
    first, *rest = [(f"{r.transferred - r.scratch:+.1%}", r.per_class) for r in results]
    gains = _("**{gain}** with {count} images per class").format(gain=first[0], count=first[1]) + "".join(
        _(", **{gain}** with {count}").format(gain=gain, count=count) for gain, count in rest)
    st.markdown(_("The 0–4 network reached **{accuracy}** on its own test digits. Kept fixed: {frozen}. Transferred "
                  "minus scratch: {gains}.").format(accuracy=f"{pretrained:.1%}", frozen=_(FREEZE_LABELS[frozen]),
                                                   gains=gains))
    st.caption(_("Transfer helps most when the new data is scarce and the old features fit it; keeping layers fixed "
                 "protects them from few images but stops them adapting. With plenty of images, scratch catches "
                 "up."))


st.title(_("After training"))
st.caption(_("Where a trained model goes next (the article's §8): out of PyTorch and onto any device, and smaller."))
models = state.trained_models()
picked = st.selectbox(_("Model"), list(models), format_func=lambda k: models[k][0], key="after_training.model",
                      help=_("Sections 1 and 2 only: FedAvg and transfer learning train their own small CNN."))
st.caption(_("This model is the one sections 1 and 2 deploy and compress. Sections 3 and 4 (federated averaging and "
             "transfer learning) do not use it: they train their own small CNN on mnist5k's digits."))
chosen_card = read_card(state.trained_model_file(picked))  # the labs load the model itself in a worker
deploy_section(picked, chosen_card)
compress_section(picked, chosen_card)
federated_section()
transfer_section()

"""After training: take a trained model out of the playground. Deployment to ONNX and ONNX Runtime, measured."""
import tempfile

import pandas as pd
import streamlit as st
import torch

from dlplay.data import DATASETS
from dlplay.deploy import INPUT, LATENCY_BATCH, OPSET, OUTPUT, deployment_report
from ui import charts, state

REPORTS = "after.reports"  # model label -> its measured forms and their files, under a key no widget owns
CALIBRATION_IMAGES = 256
RANDOM_IMAGES = 256


def measure(label: str, model, card, quantize: bool) -> None:
    """Export the model (and quantize it), measure every form, and keep the table and the files' bytes."""
    if card.dataset in DATASETS:
        data = state.dataset(card.dataset)
        images, labels = data.test.images.float() / 255, data.test.labels
        calibration = data.train.images[:CALIBRATION_IMAGES].float() / 255 if quantize else None
    else:
        images = torch.rand(RANDOM_IMAGES, *card.input_shape, generator=torch.Generator().manual_seed(0))
        labels, calibration = None, None
    with tempfile.TemporaryDirectory(prefix="dlplay-after-") as folder:
        variants = deployment_report(model, card, folder, images, labels, calibration)
        files = {v.path.name: v.path.read_bytes() for v in variants if v.path is not None}
    st.session_state.setdefault(REPORTS, {})[label] = (variants, files)


def deploy_section() -> None:
    st.header("1. Deploy: ONNX and ONNX Runtime")
    st.caption("ONNX is the common file format for trained networks: ONNX Runtime runs it on servers, phones and "
               "browsers without PyTorch. Export your model, check the file, and see that ONNX Runtime computes the "
               "same outputs; then quantize it to 8-bit integers, which makes it about 3× smaller.")
    models = state.trained_models()
    label = st.selectbox("Model", list(models), key="after.model")
    model, card = models[label]()
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


st.title("After training")
st.caption("Where a trained model goes next (the article's §8): out of PyTorch and onto any device.")
deploy_section()

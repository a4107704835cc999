"""Upload & classify: a picture in; what the model sees, what it thinks, and where it looked."""
import base64
import io

import pandas as pd
import streamlit as st
from PIL import Image

from dlplay.adversarial import fgsm, flip_epsilon, perturbation_picture
from dlplay.checkpoint import ModelFileError, load_model_bytes
from dlplay.classify import (
    SAMPLE_CREDITS,
    SAMPLE_PHOTOS,
    as_uint8,
    overlay,
    preprocess,
    probabilities,
    to_picture,
    top_k,
)
from dlplay.device import pick_device
from dlplay.explain import feature_maps, grad_cam, saliency, to_uint8
from dlplay.images import ImageRejected, decode_image
from ui import charts, state
from ui.drawing_pad import drawing_pad
from ui.trainer_views import image_grid

PICKLE_SUFFIXES = (".pt", ".pth", ".ckpt", ".pkl", ".pickle", ".bin")
DISPLAY_SIZE = 224  # model-sized pictures are enlarged to this for viewing
DRAWING_NAME = "drawing.png"
DRAWING_KEY = "classify.pad"
UPLOAD = "a model file I upload"


def choose_model():
    """The model picker: bundled, trained in this session, or an uploaded .safetensors file."""
    models = state.trained_models()
    choice = st.radio("Model", [*models, UPLOAD])
    if choice != UPLOAD:
        return models[choice]()
    uploaded = st.file_uploader("Model file (.safetensors, as dlplay saves it)", key="classify.model_file")
    if uploaded is None:
        return None
    if uploaded.name.lower().endswith(PICKLE_SUFFIXES):
        st.error(f"{uploaded.name} is a pickle file, and loading a pickle can run any code hidden in it, so dlplay "
                 "never opens one. Save the model as .safetensors (the trainer page's download, or "
                 "`python -m dlplay train --save model.safetensors`).")
        return None
    try:
        return load_model_bytes(uploaded.getvalue(), uploaded.name)
    except ModelFileError as err:
        st.error(f"This model file cannot be used: {err}.")
        return None


def choose_pictures() -> list[tuple[str, Image.Image]]:
    """Pictures from uploads, the sample photos or the camera; each bad file gets one sentence."""
    source = st.radio("Picture from", ["sample photos", "my files", "drawing", "camera"], horizontal=True)
    if source == "sample photos":
        name = st.selectbox("Sample photo", sorted(SAMPLE_CREDITS), format_func=SAMPLE_CREDITS.__getitem__)
        st.caption(f"Photo: {SAMPLE_CREDITS[name]}. From scikit-image's sample data.")
        files = [(name, (SAMPLE_PHOTOS / name).read_bytes())]
    elif source == "my files":
        uploads = st.file_uploader("Pictures (PNG, JPEG, WebP, BMP or GIF)", accept_multiple_files=True,
                                   key="classify.pictures") or []
        files = [(u.name, u.getvalue()) for u in uploads]
    elif source == "drawing":
        st.caption("Draw a digit anywhere on the pad, at any size, then send it. Dark ink on white, as on paper: "
                   "see how the model's input is inverted, cropped, fitted and centred like its training digits.")
        drawn = drawing_pad(DRAWING_KEY)
        files = [(DRAWING_NAME, drawn)] if drawn else []
    else:
        shot = st.camera_input("Take a picture")
        files = [("camera.jpg", shot.getvalue())] if shot else []
    pictures = []
    for name, data in files:
        try:
            pictures.append((name, decode_image(data, draft_size=(DISPLAY_SIZE * 2, DISPLAY_SIZE * 2))))
        except ImageRejected as err:
            st.error(f"{name}: {err}")
    return pictures


def enlarged(picture) -> Image.Image:
    """A model-sized picture scaled up with crisp pixels for viewing."""
    return Image.fromarray(picture).resize((DISPLAY_SIZE, DISPLAY_SIZE), Image.Resampling.NEAREST)


def explain(name: str, picture: Image.Image, model, card) -> None:
    """The preprocessing steps, the top-5 probabilities, and Grad-CAM and saliency maps for one picture."""
    prepared = preprocess(picture, card)
    st.subheader("What the model sees")
    for column, (caption, step) in zip(st.columns(len(prepared.steps)), prepared.steps, strict=True):
        column.image(step if step is prepared.steps[0][1] else enlarged(step), caption=caption)
    probs = probabilities(model, prepared.batch)[0]
    best = top_k(probs, card.class_names, 5)
    st.subheader("What the model thinks")
    st.markdown(f"**{best[0][0]}** with probability **{best[0][1]:.1%}**" + (
        "" if card.dataset != "mnist5k" or card.input_shape[0] != 1 or name == DRAWING_NAME else
        " (a digit model sees every picture as a digit: try one you drew)"))
    st.plotly_chart(charts.bars([name for name, _ in best], [p for _, p in best], horizontal=True, height=240))
    st.subheader("Where it looked")
    target = card.class_names.index(best[0][0])
    model_view = prepared.steps[-1][1]
    a, b, c = st.columns(3)
    a.image(enlarged(model_view), caption="the model's input")
    b.image(enlarged(overlay(model_view, grad_cam(model, prepared.batch, target))),
            caption=f"Grad-CAM for “{best[0][0]}”: the regions that raised its score")
    c.image(enlarged(overlay(model_view, saliency(model, prepared.batch, target))),
            caption="saliency: the pixels whose change moves the score most")
    with st.expander("Inside: what each convolutional block outputs for this picture"):
        device = pick_device(next(model.parameters()).device.type)
        for layer, maps in feature_maps(model, as_uint8(prepared.batch), device):
            st.caption(f"layer {layer}: {maps.shape[0]} maps of {maps.shape[2]}×{maps.shape[1]} (first 8)")
            shown = to_uint8(maps[:8].unsqueeze(1))
            image_grid(shown, [f"channel {c}" for c in range(len(shown))], width=64)
    adversary(prepared.batch, target, best[0][0], model, card)


def adversary(batch, label: int, name: str, model, card) -> None:
    """FGSM: push every pixel by ε in the direction that hurts the prediction, and find where it flips."""
    st.subheader("Fooling the model")
    st.caption("The fast gradient sign method moves every pixel by ±ε in the direction that most lowers the score "
               "of the predicted class. Small, structured noise is often enough to change the answer.")
    epsilon = st.slider("ε (how far each pixel may move, on a 0..1 scale)", 0.0, 0.3, 0.05, step=0.01)
    flips = flip_epsilon(model, batch, label, [i / 100 for i in range(31)])
    moved = fgsm(model, batch, label, epsilon)
    now = top_k(probabilities(model, moved)[0], card.class_names, 1)[0]
    a, b, c = st.columns(3)
    a.image(enlarged(perturbation_picture(batch, moved, epsilon)),
            caption=f"the perturbation (±{epsilon:.2f}, grey is 0)")
    b.image(enlarged(to_picture(moved)), caption="the picture the model now sees")
    c.markdown(f"Now read as **{now[0]}** ({now[1]:.0%})" + (" — fooled!" if now[0] != name else " — still right."))
    c.markdown(f"The reading of “{name}” flips at **ε = {flips:.2f}**." if flips is not None else
               f"No ε up to 0.30 changes the reading of “{name}”.")


def thumbnail_url(picture: Image.Image) -> str:
    """A small PNG data URL for a table cell."""
    small = picture.copy()
    small.thumbnail((48, 48))
    buffer = io.BytesIO()
    small.save(buffer, "PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def many(pictures, model, card) -> None:
    """A table of predictions for several pictures, downloadable as CSV."""
    rows = []
    for name, picture in pictures:
        best = top_k(probabilities(model, preprocess(picture, card).batch)[0], card.class_names, 3)
        rows.append({"picture": thumbnail_url(picture), "file": name, "prediction": best[0][0],
                     "probability": best[0][1], "top 3": ", ".join(f"{n} {p:.0%}" for n, p in best)})
    table = pd.DataFrame(rows)
    st.dataframe(table, hide_index=True, column_config={
        "picture": st.column_config.ImageColumn(), "probability": st.column_config.NumberColumn(format="percent")})
    st.download_button("Predictions (.csv)", table.drop(columns="picture").to_csv(index=False),
                       file_name="dlplay-predictions.csv", mime="text/csv")


st.title("Upload & classify")
st.caption("Bring a photo or a drawing and see what a model thinks of it, and why.")
chosen = choose_model()
if chosen is None:
    st.info("Choose or upload a model to classify pictures.")
    st.stop()
model, card = chosen
st.caption(f"Model: {card.architecture} for {card.input_shape[2]}×{card.input_shape[1]} "
           f"{'grayscale' if card.input_shape[0] == 1 else 'colour'} images; classes: {', '.join(card.class_names)}.")
pictures = choose_pictures()
if len(pictures) > 1:
    many(pictures, model, card)
    name = st.selectbox("Look closer at", [n for n, _ in pictures])
    pictures = [p for p in pictures if p[0] == name]
if pictures:
    explain(*pictures[0], model, card)

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
    SAMPLE_NAMES,
    SAMPLE_PHOTOS,
    as_uint8,
    overlay,
    preprocess,
    probabilities,
    to_picture,
    top_k,
)
from dlplay.device import pick_device
from dlplay.images import ImageRejected, decode_image
from dlplay.inside import feature_maps, grad_cam, saliency, to_uint8
from ui import chart_words, charts, state, tables
from ui.drawing_pad import drawing_pad
from ui.i18n import N_, _, listing, say, shown_as, translated, translator
from ui.trainer_views import image_grid

PICKLE_SUFFIXES = (".pt", ".pth", ".ckpt", ".pkl", ".pickle", ".bin")
DISPLAY_SIZE = 224  # model-sized pictures are enlarged to this for viewing
DRAWING_NAME = "drawing.png"
DRAWING_KEY = "classify.pad"
UPLOAD = "upload"  # the model picker's choice beside state.trained_models' keys


def choose_model():
    """The model picker: bundled, trained in this session, or an uploaded .safetensors file."""
    models = state.trained_models()
    labels = {**{k: label for k, (label, _load) in models.items()}, UPLOAD: _("a model file I upload")}
    choice = st.radio(_("Model"), list(labels), key="classify.model", format_func=shown_as(labels))
    if choice != UPLOAD:
        return models[choice][1]()
    uploaded = st.file_uploader(_("Model file (.safetensors, as dlplay saves it)"), key="classify.model_file")
    if uploaded is None:
        return None
    if uploaded.name.lower().endswith(PICKLE_SUFFIXES):
        st.error(_("{file} is a pickle file, and loading a pickle can run any code hidden in it, so dlplay never "
                   "opens one. Save the model as .safetensors (the trainer page's download, or "
                   "`python -m dlplay train --save model.safetensors`).").format(file=uploaded.name))
        return None
    try:
        return load_model_bytes(uploaded.getvalue(), uploaded.name)
    except ModelFileError as err:
        st.error(_("This model file cannot be used: {reason}.").format(reason=say(str(err))))
        return None


def choose_pictures() -> list[tuple[str, Image.Image]]:
    """Pictures from uploads, the sample photos or the camera; each bad file gets one sentence."""
    source = st.radio(_("Picture from"), [N_("sample photos"), N_("my files"), N_("drawing"), N_("camera")],
                      horizontal=True, format_func=translator(), key="classify.source")
    if source == "sample photos":
        name = st.selectbox(_("Sample photo"), sorted(SAMPLE_NAMES), format_func=translated(SAMPLE_NAMES),
                            key="classify.sample")
        st.caption(_("Photo: {credit}. From scikit-image's sample data.").format(credit=_(SAMPLE_CREDITS[name])))
        files = [(name, (SAMPLE_PHOTOS / name).read_bytes())]
    elif source == "my files":
        uploads = st.file_uploader(_("Pictures (PNG, JPEG, WebP, BMP or GIF)"), accept_multiple_files=True,
                                   key="classify.pictures") or []
        files = [(u.name, u.getvalue()) for u in uploads]
    elif source == "drawing":
        st.caption(_("Draw a digit anywhere on the pad, at any size, then send it. Dark ink on white, as on paper: "
                     "see how the model's input is inverted, cropped, fitted and centred like its training digits."))
        drawn = drawing_pad(DRAWING_KEY)
        files = [(DRAWING_NAME, drawn)] if drawn else []
    else:
        shot = st.camera_input(_("Take a picture"), key="classify.camera")
        files = [("camera.jpg", shot.getvalue())] if shot else []
    pictures = []
    for name, data in files:
        try:
            pictures.append((name, decode_image(data, draft_size=(DISPLAY_SIZE * 2, DISPLAY_SIZE * 2))))
        except ImageRejected as err:
            st.error(f"{name}: {say(str(err))}")
    return pictures


def enlarged(picture) -> Image.Image:
    """A model-sized picture scaled up with crisp pixels for viewing."""
    return Image.fromarray(picture).resize((DISPLAY_SIZE, DISPLAY_SIZE), Image.Resampling.NEAREST)


def explain(name: str, picture: Image.Image, model, card) -> None:
    """The preprocessing steps, the top-5 probabilities, and Grad-CAM and saliency maps for one picture."""
    prepared = preprocess(picture, card)
    st.header(_("What the model sees"))
    for column, (caption, step) in zip(st.columns(len(prepared.steps)), prepared.steps, strict=True):
        column.image(step if step is prepared.steps[0][1] else enlarged(step), caption=say(caption),
                     alt=_("{picture}, preprocessing step: {step}").format(picture=name, step=say(caption)))
    probs = probabilities(model, prepared.batch)[0]
    best = top_k(probs, card.class_names, 5)
    st.header(_("What the model thinks"))
    st.markdown(_("**{label}** with probability **{probability}**").format(label=best[0][0],
                                                                          probability=f"{best[0][1]:.1%}") + (
        "" if card.dataset != "mnist5k" or card.input_shape[0] != 1 or name == DRAWING_NAME else
        _(" (a digit model sees every picture as a digit: try one you drew)")))
    chart_words.chart(charts.bars([n for n, __ in best], [p for __, p in best], horizontal=True, height=240),
                      "classify.top5")
    st.header(_("Where it looked"))
    target = card.class_names.index(best[0][0])
    model_view = prepared.steps[-1][1]
    a, b, c = st.columns(3)
    looked = (_("the model's input"),
              _("Grad-CAM for “{label}”: the regions that raised its score").format(label=best[0][0]),
              _("saliency: the pixels whose change moves the score most"))
    a.image(enlarged(model_view), caption=looked[0], alt=looked[0])
    b.image(enlarged(overlay(model_view, grad_cam(model, prepared.batch, target))), caption=looked[1], alt=looked[1])
    c.image(enlarged(overlay(model_view, saliency(model, prepared.batch, target))), caption=looked[2], alt=looked[2])
    with st.expander(_("Inside: what each convolutional block outputs for this picture")):
        device = pick_device(next(model.parameters()).device.type)
        for layer, maps in feature_maps(model, as_uint8(prepared.batch), device):
            st.caption(_("layer {layer}: {count} maps of {size} (first 8)").format(
                layer=layer, count=maps.shape[0], size=f"{maps.shape[2]}×{maps.shape[1]}"))
            shown = to_uint8(maps[:8].unsqueeze(1))
            image_grid(shown, [_("channel {number}").format(number=c) for c in range(len(shown))], width=64)
    adversary(prepared.batch, target, best[0][0], model, card)


def adversary(batch, label: int, name: str, model, card) -> None:
    """FGSM: push every pixel by ε in the direction that hurts the prediction, and find where it flips."""
    st.header(_("Fooling the model"))
    st.caption(_("The fast gradient sign method moves every pixel by ±ε in the direction that most lowers the score "
                 "of the predicted class. Small, structured noise is often enough to change the answer."))
    epsilon = st.slider(_("ε (how far each pixel may move, on a 0..1 scale)"), 0.0, 0.3, 0.05, step=0.01,
                        key="classify.epsilon")
    flips = flip_epsilon(model, batch, label, [i / 100 for i in range(31)])
    moved = fgsm(model, batch, label, epsilon)
    now = top_k(probabilities(model, moved)[0], card.class_names, 1)[0]
    a, b, c = st.columns(3)
    fooled = (_("the perturbation (±{epsilon}, grey is 0)").format(epsilon=f"{epsilon:.2f}"),
              _("the picture the model now sees"))
    a.image(enlarged(perturbation_picture(batch, moved, epsilon)), caption=fooled[0], alt=fooled[0])
    b.image(enlarged(to_picture(moved)), caption=fooled[1], alt=fooled[1])
    c.markdown(_("Now read as **{label}** ({probability})").format(label=now[0], probability=f"{now[1]:.1%}")
               + (_(" — fooled!") if now[0] != name else _(" — still right.")))
    c.markdown(_("The reading of “{label}” flips at **ε = {epsilon}**.").format(label=name, epsilon=f"{flips:.2f}")
               if flips is not None else _("No ε up to 0.30 changes the reading of “{label}”.").format(label=name))


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
        rows.append({_("picture"): thumbnail_url(picture), _("file"): name, _("prediction"): best[0][0],
                     _("probability"): best[0][1], _("top 3"): listing(f"{n} {p:.1%}" for n, p in best)})
    table = pd.DataFrame(rows)
    tables.table(table, {_("picture"): st.column_config.ImageColumn(), _("probability"): tables.percent()})
    st.download_button(_("Predictions (.csv)"), table.drop(columns=_("picture")).to_csv(index=False),
                       file_name="dlplay-predictions.csv", mime="text/csv", key="classify.csv")


st.title(_("Upload & classify"))
st.caption(_("Bring a photo or a drawing and see what a model thinks of it, and why."))
chosen = choose_model()
if chosen is None:
    st.info(_("Choose or upload a model to classify pictures."))
    st.stop()
model, card = chosen
st.caption((_("Model: {architecture} for {size} grayscale images; classes: {classes}.") if card.input_shape[0] == 1
            else _("Model: {architecture} for {size} colour images; classes: {classes}.")).format(
    architecture=card.architecture, size=f"{card.input_shape[2]}×{card.input_shape[1]}",
    classes=listing(card.class_names)))
pictures = choose_pictures()
if len(pictures) > 1:
    many(pictures, model, card)
    name = st.selectbox(_("Look closer at"), [n for n, __ in pictures], key="classify.closer")
    pictures = [p for p in pictures if p[0] == name]
if pictures:
    explain(*pictures[0], model, card)

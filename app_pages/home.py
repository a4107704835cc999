"""Home: the path through the playground, the training loop, the device, and a look at the embedded digits."""
import streamlit as st

from dlplay.data import sample_per_class, to_display
from dlplay.device import pick_device
from ui import state
from ui.i18n import N_, _, say


def training_loop_dot() -> str:
    """The training loop as a Graphviz cycle, in the page's language."""
    nodes = [("input", _("Input"), _("(image pixels)"), "#eef3fb"),
             ("hidden", _("Hidden layers"), _("(weights, activations)"), "#eef3fb"),
             ("output", _("Output"), _("(class probabilities)"), "#eef3fb"),
             ("loss", _("Loss"), _("(cross-entropy)"), "#fdf0e6"),
             ("backprop", _("Backprop"), _("(gradients by chain rule)"), "#fdf0e6"),
             ("update", _("Update"), _("(optimizer step)"), "#e9f6ec")]
    lines = ['digraph loop { layout=circo; bgcolor="transparent"; mindist=0.4;',
             'node [shape=box, style="rounded,filled", color="#4a6fa5", fontname="Helvetica", fontsize=16, '
             'margin="0.2,0.1"]; edge [color="#4a6fa5"];']
    lines += [f'{key} [label="{name}\\n{what}", fillcolor="{colour}"];' for key, name, what, colour in nodes]
    iterate = _("iterate")
    lines += ["input -> hidden -> output -> loss -> backprop -> update;",
              f'update -> input [label="{iterate}", style=dashed, fontname="Helvetica"];', "}"]
    return "\n".join(lines)


st.title(_("dlplay: learn deep learning by doing"))
st.markdown(_(
    "A playground that runs **real PyTorch**: you move a control, a real model computes, and you see the numbers "
    "and pictures change. It follows one tutorial's syllabus from a single neuron to a convolutional network "
    "trained on real images."
))

st.header(_("The path through the playground"))
st.markdown("\n".join(_(line) for line in (
    N_("1. **Neuron math**: one neuron, then a small network's forward and backward pass, every number checked "
       "against autograd."),
    N_("2. **Activations and optimizers**: curves and derivatives, vanishing gradients, optimizers racing on loss "
       "surfaces."),
    N_("3. **Network playground**: a small network learning 2-D data with a live decision boundary."),
    N_("4. **Convolution**: what one Conv2D and pooling layer compute, number by number, on your own picture."),
    N_("5. **CNN trainer**: train a CNN on real images, watch it learn, look inside it."),
    N_("6. **Upload & classify**: your own picture in; probabilities and where the model looked out."),
    N_("7. **After training**: your model out of the playground: deployed, compressed, federated, transferred."))))
links = st.container(horizontal=True)  # one row, wrapping where the window is narrow: no link cut short
links.page_link("app_pages/neuron.py", label=_("Start with one neuron"), icon=":material/calculate:")
links.page_link("app_pages/trainer.py", label=_("Train a CNN on real digits"), icon=":material/model_training:")
links.page_link("app_pages/classify.py", label=_("Classify your own picture"), icon=":material/image_search:")
st.caption(_("From a terminal, `python -m dlplay train` trains the same small CNN to about 98.5% test accuracy on "
             "the embedded digits in about eight seconds on a laptop CPU."))

st.header(_("The training loop"))
st.caption(_("Every page is a piece of this loop: data flows forward, the loss flows back, the optimizer updates."))
st.graphviz_chart(training_loop_dot())

device = pick_device("auto")
st.header(_("Where your models run"))
if device.device.type == "cpu":
    st.info(_("**{name}**: no GPU found, so training runs on the processor ({precision}). The embedded digits still "
              "train in seconds.").format(name=device.name, precision=say(device.precision)))
else:
    st.success(_("**{name}** ({kind}): training runs on the GPU ({precision}).").format(
        name=device.name, kind=device.device.type.upper(), precision=say(device.precision)))

digits = state.dataset("mnist5k")
st.header(_("The data: 5,000 real handwritten digits, built in"))
st.markdown(_(
    "`mnist5k` holds **{train:,} training** and **{test:,} test** digits, {train_each} and {test_each} per class, so "
    "every training feature works offline. Two training examples of each class:"
).format(train=len(digits.train), test=len(digits.test), train_each=len(digits.train) // digits.num_classes,
         test_each=len(digits.test) // digits.num_classes))
preview = sample_per_class(digits.train, per_class=2, seed=0)
pictures, labels = to_display(preview.images), preview.labels.tolist()
for class_index, column in enumerate(st.columns(digits.num_classes)):
    picks = [picture for picture, label in zip(pictures, labels, strict=True) if label == class_index]
    name = digits.class_names[class_index]
    column.image(picks, caption=[_("label {name}").format(name=name)] * len(picks), width=64, output_format="PNG",
                 alt=[_("a handwritten {name} from the training set").format(name=name)] * len(picks))
st.caption("MNIST © Y. LeCun, C. Cortes, C. J. C. Burges, CC BY-SA 3.0.")

"""dlplay router, the script Streamlit runs for every page (app.py serves it): page config, navigation over the pages
that exist, the sidebar device badge and run progress.

The pages live in app_pages/, not pages/: Streamlit treats a folder named pages/ as its old multipage layout and,
on a fresh server, runs a page's file without this router when its URL is opened directly.
"""
import streamlit as st

from dlplay.device import DeviceInfo, configure_threads, pick_device
from dlplay.limits import limits
from dlplay.training.jobs import Job, SettingError
from ui import state
from ui.i18n import _, language_switch, say
from ui.trainer_views import sidebar_progress

SERVER_THREADS = 1  # the server renders and workers train: page math is small, and a second OpenMP thread only
# fights the workers (and a browser on the same machine) for the cores: the playground updates 2.4 times a second
# with one thread, 1.2 with two (bench/playground_bench.py, 2 cores).

# Streamlit marks a focused page link only by a faint grey background (1.1:1 on the sidebar), a text, number or
# select field by its thin border's colour, and the focusable page body not at all: a keyboard user must see where
# the focus is (WCAG 2.4.7), so each gets a ring. Styles of the whole app, sent once per page run.
PAGE_STYLE = """<style>
[data-testid="stSidebarNavLink"]:focus-visible, [data-testid="stMain"]:focus-visible,
input[type="text"]:focus-visible, input[type="number"]:focus-visible, textarea:focus-visible {
  outline: 2px solid #1f5fbf; outline-offset: -2px;
}
/* KaTeX draws a matrix's brackets 2 px past the box Streamlit fits to a formula, whose overflow-x:auto then makes
   a scroll region that a keyboard cannot reach (axe-core's scrollable-region-focusable): room for them. */
.katex-display { padding-right: 4px; }
</style>"""


@st.cache_resource
def start_up() -> DeviceInfo:
    """Once per server process: set torch's thread count and pick the device."""
    configure_threads(SERVER_THREADS)
    return pick_device("auto")


def run_badge(job: Job) -> None:
    """The session's active run, on every page; it also tells the scheduler that the session is still here."""
    job.touch()
    snapshot = job.snapshot()
    sidebar_progress(snapshot, job.config.epochs)
    if not snapshot.active:
        st.rerun()  # the run ended: a full rerun draws the page without this ticking fragment


st.set_page_config(page_title=_("dlplay: learn deep learning by doing"), page_icon="🧠", layout="wide")
st.html(PAGE_STYLE)
device = start_up()
try:
    limits()  # every input's limits, read once: a bad DLPLAY_MAX_* stops the app here with one sentence
except SettingError as err:
    st.error(_("The server's settings are not usable: {reason}.").format(reason=say(str(err))))
    st.stop()
try:
    state.scheduler()  # its worker pool warms up now, not when the first learner presses Train
except SettingError as err:
    st.sidebar.error(_("Training is not available: {reason}.").format(reason=say(str(err))))
page = st.navigation([
    st.Page("app_pages/home.py", title=_("Home"), icon=":material/home:", default=True),
    st.Page("app_pages/neuron.py", title=_("Neuron math"), icon=":material/calculate:"),
    st.Page("app_pages/activations.py", title=_("Activations"), icon=":material/show_chart:"),
    st.Page("app_pages/optimizers.py", title=_("Optimizers"), icon=":material/route:"),
    st.Page("app_pages/playground.py", title=_("Network playground"), icon=":material/hub:"),
    st.Page("app_pages/convolution.py", title=_("Convolution"), icon=":material/grid_on:"),
    st.Page("app_pages/trainer.py", title=_("CNN trainer"), icon=":material/model_training:"),
    st.Page("app_pages/classify.py", title=_("Upload & classify"), icon=":material/image_search:"),
    st.Page("app_pages/after_training.py", title=_("After training"), icon=":material/rocket_launch:"),
])
language_switch()
st.sidebar.markdown(_("**Device:** {name}").format(name=device.name))
for gone in state.take_evicted_runs():
    st.toast(_("Your finished run of {model} on {dataset} was removed to keep the server's disk within its budget; "
               "download the models you want to keep.").format(model=gone.config.model, dataset=gone.dataset_name),
             icon=":material/delete:", duration="infinite")
current = state.current_run()
if current is not None and current.snapshot().active and page.url_path != "trainer":  # the trainer shows it all
    with st.sidebar:
        st.fragment(run_every=2.0)(run_badge)(current)
page.run()

"""dlplay router: page config, navigation over the pages that exist, and the sidebar device badge.

The pages live in app_pages/, not pages/: Streamlit treats a folder named pages/ as its old multipage layout and,
on a fresh server, runs a page's file without this router when its URL is opened directly.
"""
import streamlit as st

from dlplay.device import DeviceInfo, configure_threads, pick_device


@st.cache_resource
def start_up() -> DeviceInfo:
    """Once per server process: set torch's thread count and pick the device."""
    configure_threads()
    return pick_device("auto")


st.set_page_config(page_title="dlplay: learn deep learning by doing", page_icon="🧠", layout="wide")
device = start_up()
page = st.navigation([
    st.Page("app_pages/home.py", title="Home", icon=":material/home:", default=True),
    st.Page("app_pages/neuron.py", title="Neuron math", icon=":material/calculate:"),
    st.Page("app_pages/activations.py", title="Activations", icon=":material/show_chart:"),
    st.Page("app_pages/optimizers.py", title="Optimizers", icon=":material/route:"),
    st.Page("app_pages/trainer.py", title="CNN trainer", icon=":material/model_training:"),
    st.Page("app_pages/classify.py", title="Upload & classify", icon=":material/image_search:"),
])
st.sidebar.markdown(f"**Device:** {device.name}")
page.run()

"""dlplay router: page config, navigation over the pages that exist, and the sidebar device badge."""
import streamlit as st

from dlplay.device import DeviceInfo, configure_threads, pick_device


@st.cache_resource
def start_up() -> DeviceInfo:
    """Once per server process: set torch's thread count and pick the device."""
    configure_threads()
    return pick_device("auto")


st.set_page_config(page_title="dlplay: learn deep learning by doing", page_icon="🧠", layout="wide")
device = start_up()
page = st.navigation([st.Page("pages/home.py", title="Home", icon="🏠", default=True)])
st.sidebar.markdown(f"**Device:** {'🟢' if device.device.type != 'cpu' else '⚪'} {device.name}")
page.run()

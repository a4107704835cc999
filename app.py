"""dlplay's server: Streamlit serving router.py (the pages), with one addition of ours in front of it, the middleware
that gives each browser its secret cookie (ui/browser.py). `streamlit run app.py` finds `app` and serves it."""
from starlette.middleware import Middleware
from streamlit.starlette import App

from ui.browser import BrowserCookie

app = App("router.py", middleware=[Middleware(BrowserCookie)])

"""A minimal client of Streamlit's own websocket protocol: one real server session without a browser.

The crowd bench uses it to stand in for learners whose browsers run on their own computers: the server does all of
its real work (script runs, fragment reruns on their timers, sending every element), and none of the rendering
lands on the server's cores. It speaks the same protobuf messages as Streamlit's frontend: a rerun request with the
page and widget states, clicks as trigger values, and the fragment auto-reruns the server asks for.
"""
import threading
import time

from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from websockets.sync.client import connect


class Session:
    """One browser-less session on `url` (http://host:port), opened on `page` (e.g. 'trainer')."""

    def __init__(self, url: str, page: str):
        self.page, self.buttons, self.texts = page, {}, []
        self.page_hash = ""
        self._lock = threading.Lock()
        self._finished = threading.Event()
        self._timers: dict[str, threading.Thread] = {}
        self._closed = threading.Event()
        self._ws = connect(url.replace("http", "ws", 1) + "/_stcore/stream", subprotocols=["streamlit"],
                           max_size=None)
        threading.Thread(target=self._read, daemon=True).start()

    def run(self, click: str | None = None, timeout: float = 120.0) -> float:
        """Rerun the page (clicking the button labelled `click`); returns the seconds until the script finished."""
        start = time.perf_counter()
        message = BackMsg()
        state = message.rerun_script
        state.page_name, state.page_script_hash = self.page, self.page_hash
        if click:
            widget = state.widget_states.widgets.add()
            widget.id, widget.trigger_value = self.buttons[click], True
        self._finished.clear()
        self._send(message)
        if not self._finished.wait(timeout):
            raise TimeoutError(f"the {self.page} page did not finish within {timeout} s")
        return time.perf_counter() - start

    def close(self) -> None:
        """Close the websocket, as a closed tab does."""
        self._closed.set()
        self._ws.close()

    def _send(self, message: BackMsg) -> None:
        with self._lock:
            self._ws.send(message.SerializeToString())

    def _read(self) -> None:
        try:
            for data in self._ws:
                message = ForwardMsg()
                message.ParseFromString(data)
                self._handle(message)
        except Exception:  # the connection closed: nothing more to read
            self._closed.set()

    def _handle(self, message: ForwardMsg) -> None:
        kind = message.WhichOneof("type")
        if kind == "navigation":  # the page that ran: later reruns name it by its hash, as the frontend does
            self.page_hash = message.navigation.page_script_hash
        elif kind == "delta" and message.delta.WhichOneof("type") == "new_element":
            element = message.delta.new_element
            if element.WhichOneof("type") == "button":
                self.buttons[element.button.label] = element.button.id
            elif element.WhichOneof("type") in ("markdown", "progress", "alert"):
                self.texts.append(getattr(element, element.WhichOneof("type")))
        elif kind == "script_finished":
            self._finished.set()
        elif kind == "auto_rerun":
            rerun = message.auto_rerun
            if rerun.fragment_id not in self._timers:
                timer = threading.Thread(target=self._tick, args=(rerun.fragment_id, rerun.interval), daemon=True)
                self._timers[rerun.fragment_id] = timer
                timer.start()
        elif kind == "stop_auto_rerun":
            for fragment_id in message.stop_auto_rerun.fragment_ids:
                self._timers.pop(fragment_id, None)

    def _tick(self, fragment_id: str, interval: float) -> None:
        """Rerun a fragment every `interval` seconds, as the frontend does, until the server says stop."""
        while not self._closed.wait(interval) and fragment_id in self._timers:
            message = BackMsg()
            state = message.rerun_script
            state.page_name, state.page_script_hash = self.page, self.page_hash
            state.fragment_id, state.is_auto_rerun = fragment_id, True
            try:
                self._send(message)
            except Exception:
                return

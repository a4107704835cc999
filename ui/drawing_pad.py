"""A drawing pad (HTML canvas) as a Streamlit v2 component: draw with mouse, pen or finger, then send it."""
import base64

import streamlit as st

from ui.i18n import _

HTML = """
<div class="pad">
  <canvas width="280" height="280" aria-label="drawing pad"></canvas>
  <div class="row"><button class="use">Classify my drawing</button><button class="clear">Clear</button></div>
</div>
"""
CSS = """
.pad { display: inline-flex; flex-direction: column; gap: 8px; }
canvas { border: 1px solid #b8c4d6; border-radius: 8px; touch-action: none; cursor: crosshair; width: 280px; }
.row { display: flex; gap: 8px; }
button { font: inherit; padding: 4px 12px; border-radius: 8px; border: 1px solid #b8c4d6; background: #fff;
         cursor: pointer; }
button.use { background: #ff4b4b; border-color: #ff4b4b; color: #fff; }
"""
# Dark ink on white paper, like a drawing on paper: the classify page's preprocessing inverts it for digit models.
JS = """
export default function({ parentElement, data, setTriggerValue }) {
  const canvas = parentElement.querySelector("canvas");
  parentElement.querySelector(".use").textContent = data.send;
  parentElement.querySelector(".clear").textContent = data.clear;
  const ctx = canvas.getContext("2d");
  const clear = () => { ctx.fillStyle = "#fff"; ctx.fillRect(0, 0, canvas.width, canvas.height); };
  if (!canvas.dataset.ready) { clear(); canvas.dataset.ready = "1"; }
  ctx.lineWidth = 22; ctx.lineCap = "round"; ctx.lineJoin = "round"; ctx.strokeStyle = "#000";
  const point = (e) => {
    const box = canvas.getBoundingClientRect();
    return [(e.clientX - box.left) * canvas.width / box.width, (e.clientY - box.top) * canvas.height / box.height];
  };
  let drawing = false;
  canvas.onpointerdown = (e) => {
    drawing = true; canvas.setPointerCapture(e.pointerId);
    ctx.beginPath(); ctx.moveTo(...point(e)); ctx.lineTo(...point(e)); ctx.stroke();
  };
  canvas.onpointermove = (e) => { if (drawing) { ctx.lineTo(...point(e)); ctx.stroke(); } };
  canvas.onpointerup = () => { drawing = false; };
  parentElement.querySelector(".clear").onclick = clear;
  parentElement.querySelector(".use").onclick = () => setTriggerValue("drawing", canvas.toDataURL("image/png"));
}
"""

_pad = st.components.v2.component("dlplay.drawing_pad", html=HTML, css=CSS, js=JS)


def drawing_pad(key: str) -> bytes | None:
    """Show the pad; return the PNG bytes of the drawing the user last sent (kept in the session), if any."""
    result = _pad(key=key, data={"send": _("Classify my drawing"), "clear": _("Clear")},
                  on_drawing_change=lambda: None)
    sent = getattr(result, "drawing", None)
    if sent:
        st.session_state[f"{key}.png"] = base64.b64decode(sent.split(",", 1)[1])
    return st.session_state.get(f"{key}.png")

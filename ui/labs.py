"""A lab in the short-job lane, as a page shows it: start it for this browser, follow it live (its place in the
queue, or how far it is, and a Cancel), then the page draws its result."""
import streamlit as st

from dlplay.training.jobs import AlreadyTraining, ServerFull
from dlplay.training.jobs.lane import Lab, LabSnapshot
from dlplay.training.jobs.spec import RunStatus
from ui import state
from ui.i18n import _, say, sentence

REFRESH_SECONDS = 1.0


def start_lab(kind: str, params: dict, files: dict[str, bytes] | None = None) -> Lab | None:
    """Queue a lab for this browser; None, with one sentence on the page, when it cannot be queued."""
    me = state.visitor()
    try:
        return state.scheduler().labs.submit(kind, params, me.owner, me.quota_key, files)
    except (AlreadyTraining, ServerFull) as err:
        st.error(sentence(say(str(err))))
        return None


def _live(lab: Lab, key: str) -> None:
    """The lab's progress bar and Cancel button; the whole page reruns once it has ended."""
    snapshot = lab.snapshot()
    if not snapshot.status.active:
        st.rerun()
    if snapshot.status is RunStatus.QUEUED:
        place = _("Waiting for a lab slot: {place} in line.").format(place=snapshot.queue_position)
        if snapshot.expected_start_seconds is not None:
            place += _(" Expected to start in about {seconds} s.").format(
                seconds=max(1, round(snapshot.expected_start_seconds)))
        st.progress(0.0, text=place)
    else:
        text = say(snapshot.text) if snapshot.text else _("Starting a worker process.")
        st.progress(snapshot.fraction, text=_("{what} ({seconds} s)").format(what=text,
                                                                             seconds=round(snapshot.elapsed_seconds)))
    if st.button(_("Cancel"), key=f"{key}.cancel"):
        lab.cancel()
        st.rerun()


def follow(lab: Lab, key: str) -> LabSnapshot:
    """While the lab waits or runs, show it live; once it has ended, say why if it did not finish. Its snapshot."""
    snapshot = lab.snapshot()
    if snapshot.status.active:
        st.fragment(run_every=REFRESH_SECONDS)(_live)(lab, key)
    elif snapshot.status is RunStatus.STOPPED:
        st.info(sentence(say(snapshot.message)))
    elif snapshot.status is not RunStatus.FINISHED:
        st.error(sentence(say(snapshot.message)))
    return snapshot

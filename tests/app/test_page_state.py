"""A page's declared state (ui.state.PageState) lives in st.session_state under '<page>.<name>', keeps its values
across reruns, and gives every session its own mutable defaults."""
from streamlit.testing.v1 import AppTest


def script():
    import streamlit as st

    from ui.state import Field, PageState

    class CounterState(PageState):
        page = "counter"
        clicks = Field(0)
        seen = Field(factory=list)
        note = Field(None)

    page = CounterState()
    if st.button("click", key=CounterState.key("click")):
        page.clicks += 1
        page.seen.append(page.clicks)
    st.write(f"{page.clicks} {page.seen} {page.note}")


def test_declared_state_keeps_its_values_under_the_pages_keys():
    at = AppTest.from_function(script, default_timeout=60).run()
    assert at.markdown[0].value == "0 [] None"
    assert "counter.note" not in at.session_state  # a plain default is not written until it is set
    at.button[0].click().run()
    at.button[0].click().run()
    assert at.markdown[0].value == "2 [1, 2] None"
    assert at.session_state["counter.clicks"] == 2 and at.session_state["counter.seen"] == [1, 2]
    other = AppTest.from_function(script, default_timeout=60).run()  # another session: fresh defaults
    assert other.markdown[0].value == "0 [] None"

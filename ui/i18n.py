"""The page's language: English (the messages as written) or 中文 from locale/zh/LC_MESSAGES/dlplay.po.

Babel reads the .po catalog directly (no compiled .mo file to keep in step) and is the standard tool for extracting
and updating gettext catalogs; the standard library's gettext could only read compiled files.
"""
from functools import cache
from pathlib import Path

import streamlit as st
from babel.messages.pofile import read_po

LOCALE_DIR = Path(__file__).resolve().parents[1] / "locale"
LANGUAGES = {"en": "English", "zh": "中文"}
KEY = "ui.lang"  # the sidebar switch's key; the URL's ?lang= keeps the choice


@cache
def catalog(language: str) -> dict[str, str]:
    """msgid -> msgstr for `language` (empty for English, whose messages are the ids)."""
    path = LOCALE_DIR / language / "LC_MESSAGES" / "dlplay.po"
    if language == "en" or not path.exists():
        return {}
    with path.open("rb") as file:
        return {m.id: m.string for m in read_po(file) if m.id and m.string}


def browser_language() -> str:
    """The language the browser asks for, when dlplay has it (else English)."""
    return "zh" if (st.context.locale or "").lower().startswith("zh") else "en"


def current() -> str:
    """This session's language: the switch, else the URL's ?lang=, else the browser's."""
    if KEY not in st.session_state:
        asked = st.query_params.get("lang")
        st.session_state[KEY] = asked if asked in LANGUAGES else browser_language()
    return st.session_state[KEY]


def _(message: str) -> str:
    """`message` in the session's language (English messages are their own translation)."""
    return catalog(current()).get(message, message)


def language_switch() -> None:
    """The sidebar's English / 中文 switch; the URL follows it, and every control keeps its value."""
    current()
    st.sidebar.radio("Language / 语言", list(LANGUAGES), format_func=LANGUAGES.__getitem__, horizontal=True, key=KEY)
    st.query_params["lang"] = st.session_state[KEY]

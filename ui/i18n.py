"""The page's language: English (the messages as written) or 中文 from locale/zh/LC_MESSAGES/dlplay.po.

Babel reads the .po catalog directly (no compiled .mo file to keep in step) and is the standard tool for extracting
and updating gettext catalogs (`pybabel extract` / `pybabel update`, see README); the standard library's gettext
reads only compiled files and extracts nothing.

The pages mark their own text with `_()` (shown now) or `N_()` (data shown later through `_()`). The core (dlplay)
holds no page text of its own: what it says (error messages, run messages, preprocessing steps, registry
descriptions) is English for the CLI, and the page translates it with `say()`, which also matches the catalog's
templates ("the CSV needs at least {count} points") against a message with its values filled in.
"""
import re
import string
from collections.abc import Callable
from functools import cache
from pathlib import Path

import streamlit as st
from babel.messages.pofile import read_po
from streamlit.runtime.scriptrunner_utils.script_run_context import get_script_run_ctx

from ui import core_texts

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


@cache
def templates(language: str) -> list[tuple[re.Pattern, str]]:
    """The core's messages with {placeholders} (ui/core_texts.py), as patterns that match the message with its
    values filled in, each with its translation."""
    found = []
    for english in (*core_texts.REGISTRIES, *core_texts.PREPROCESSING, *core_texts.MESSAGES):
        target = catalog(language).get(english)
        if target is None:
            continue
        pattern, fields = "", set()
        for literal, field, _spec, _conversion in string.Formatter().parse(english):
            pattern += re.escape(literal)
            if field is not None:
                pattern += f"(?P={field})" if field in fields else f"(?P<{field}>.+?)"
                fields.add(field)
        if fields:
            found.append((re.compile(pattern + r"\Z", re.DOTALL), target))
    return sorted(found, key=lambda item: -len(item[0].pattern))  # the most specific template first


def browser_language() -> str:
    """The language the browser asks for, when dlplay has it (else English)."""
    return "zh" if (st.context.locale or "").lower().startswith("zh") else "en"


def current() -> str:
    """This session's language: the switch, else the URL's ?lang=, else the browser's (English outside a page)."""
    if get_script_run_ctx(suppress_warning=True) is None:
        return "en"
    if KEY not in st.session_state:
        asked = st.query_params.get("lang")
        st.session_state[KEY] = asked if asked in LANGUAGES else browser_language()
    return st.session_state[KEY]


def _(message: str) -> str:
    """`message` in the session's language (English messages are their own translation)."""
    return catalog(current()).get(message, message)


def translator() -> Callable[[str], str]:
    """`_` fixed to this session's language now: a widget's format_func, which Streamlit may call after the run."""
    language = current()
    return lambda message: catalog(language).get(message, message)


def shown_as(labels) -> Callable:
    """A widget's format_func that shows each option by its label: `labels` maps options to labels (a dict), or
    is a list of labels indexed by the option."""
    return labels.__getitem__


def translated(names: dict) -> Callable:
    """A widget's format_func for options whose names are messages: option -> its name in the page's language."""
    return shown_as({option: _(name) for option, name in names.items()})


def N_(message: str) -> str:  # noqa: N802 (gettext's name for it, which Babel's extractor looks for)
    """Mark `message` for the catalog where it is defined; `_()` translates it where it is shown."""
    return message


def translate(text: str, language: str) -> str:
    """A message from the core in `language`: the catalog's entry for it, else the template it fills in (its
    values translated too when the catalog has them), else the English as it is."""
    if text in catalog(language):
        return catalog(language)[text]
    for pattern, template in templates(language):
        match = pattern.match(text)
        if match:
            return template.format(**{k: translate(v, language) for k, v in match.groupdict().items()})
    return text


def say(text: str) -> str:
    """A message from the core in the session's language (see `translate`)."""
    return translate(text, current())


def say_in_code(code: str) -> str:
    """Python code the core wrote, its docstrings in the session's language (see `say`)."""
    return re.sub(r'"""(.+?)"""', lambda found: f'"""{say(found.group(1))}"""', code, flags=re.DOTALL)


def listing(items) -> str:
    """Items as a list in the session's language: "a, b, c" in English, "a、b、c" in Chinese."""
    return ("、" if current() == "zh" else ", ").join(items)


def sentence(text: str) -> str:
    """A message from the core as a sentence: capital first letter and a full stop (。 in Chinese)."""
    text = text.rstrip(".")
    return text[:1].upper() + text[1:] + ("。" if current() == "zh" else ".")


def language_switch() -> None:
    """The sidebar's English / 中文 switch; the URL follows it, and every control keeps its value."""
    current()
    st.sidebar.radio("Language / 语言", list(LANGUAGES), format_func=shown_as(LANGUAGES), horizontal=True, key=KEY)
    st.query_params["lang"] = st.session_state[KEY]

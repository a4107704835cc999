"""The Chinese catalog: every message translated, with the same placeholders, in the glossary's terms, and every
message the code asks for is in it."""
import re
import string
import tomllib
from pathlib import Path

from babel.messages.pofile import read_po

REPO = Path(__file__).resolve().parents[2]
CATALOG = REPO / "locale" / "zh" / "LC_MESSAGES" / "dlplay.po"


def messages() -> dict[str, str]:
    with CATALOG.open("rb") as file:
        return {m.id: m.string for m in read_po(file) if m.id}


def placeholders(text: str) -> set[str]:
    return {field for _, field, _, _ in string.Formatter().parse(text) if field is not None}


def test_every_message_has_a_translation_with_the_same_placeholders():
    found = messages()
    assert found
    for english, chinese in found.items():
        assert chinese.strip(), f"no translation for {english!r}"
        assert placeholders(english) == placeholders(chinese), english


def test_the_glossarys_terms_are_used():
    glossary = tomllib.loads((REPO / "locale" / "glossary.toml").read_text())
    for english, chinese in messages().items():
        for term, translated in glossary.items():
            if re.search(rf"\b{re.escape(term)}", english, re.IGNORECASE):
                assert translated in chinese, f"{english!r} uses {term!r}: expected {translated!r}"


def test_every_message_the_code_asks_for_is_in_the_catalog():
    asked = set()
    for path in [REPO / "app.py", *(REPO / "app_pages").glob("*.py"), *(REPO / "ui").glob("*.py")]:
        for call in re.finditer(r'_\(\s*((?:"(?:[^"\\]|\\.)*"\s*)+)\)', path.read_text()):
            asked.add("".join(eval(part) for part in re.findall(r'"(?:[^"\\]|\\.)*"', call.group(1))))  # noqa: S307
    missing = asked - set(messages())
    assert asked and not missing, missing

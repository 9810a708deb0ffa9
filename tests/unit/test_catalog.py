"""Every message the code and the console's templates pass to gettext has its English text
(English on request)."""

from __future__ import annotations

from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parents[2]
KEYWORDS = {"_": None, "gettext": None, "lazy_gettext": None, "_l": None}


def test_every_gettext_message_has_an_english_translation():
    with (ROOT / "app/translations/en/LC_MESSAGES/messages.po").open("rb") as handle:
        catalog = read_po(handle)
    used = {
        message
        for _file, _line, message, _comments, _context in extract_from_dir(
            ROOT / "app",
            method_map=[("**.py", "python"), ("**/templates/**.html", "jinja2")],
            keywords=KEYWORDS,
        )
        if isinstance(message, str) and message
    }
    missing = sorted(m for m in used if m not in catalog or not catalog[m].string)
    assert not missing, f"no English for: {missing}"


def test_every_user_task_of_the_shipped_diagrams_has_an_english_title():
    """Task titles are the diagrams' names; English readers get the catalog's translation
    (app/messages.task_title). A task an analyst adds later shows its name until then."""
    from lxml import etree

    with (ROOT / "app/translations/en/LC_MESSAGES/messages.po").open("rb") as handle:
        catalog = read_po(handle)
    names = {
        element.get("name")
        for path in (ROOT / "bpmn").glob("*.bpmn")
        for element in etree.parse(str(path)).iter("{http://www.omg.org/spec/BPMN/20100524/MODEL}userTask")
    }
    assert names, "no user tasks found"
    missing = sorted(n for n in names if n not in catalog or not catalog[n].string)
    assert not missing, f"no English title for: {missing}"

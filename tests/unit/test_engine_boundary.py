"""Only app/workflow/ talks to SpiffWorkflow: everything else goes through its verbs."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
IMPORT = re.compile(r"^\s*(from|import)\s+SpiffWorkflow\b", re.M)


def test_no_module_outside_app_workflow_imports_spiffworkflow():
    offenders = [
        str(path.relative_to(ROOT))
        for folder in ("app", "workers")
        for path in (ROOT / folder).rglob("*.py")
        if "workflow" not in path.relative_to(ROOT).parts[:2] and IMPORT.search(path.read_text(encoding="utf-8"))
    ]
    assert offenders == []

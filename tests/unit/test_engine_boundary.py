"""Only app/workflow/ talks to SpiffWorkflow: everything else goes through its verbs."""

import ast
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


def test_the_rule_thresholds_live_only_in_the_dmn_tables():
    """rules.md: an analyst changes the 0.10 / 0.30 spread limits by editing rules/, never
    Python: no such number appears in the code (as a float or as a Decimal's text)."""
    offenders = []
    for path in (ROOT / "app").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            value = node.value if isinstance(node, ast.Constant) else None
            is_float = isinstance(value, float) and value in (0.1, 0.3)
            is_text = (
                isinstance(node, ast.Call)
                and getattr(node.func, "id", "") == "Decimal"
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and str(node.args[0].value) in ("0.1", "0.10", "0.3", "0.30")
            )
            if is_float or is_text:
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert offenders == []

"""Which data names a decision table reads: what the evaluate endpoint requires and allows."""

from pathlib import Path

import pytest

from app.workflow.decisions import deployed_table, known_inputs, required_inputs, variables_of

RULES = Path(__file__).resolve().parents[2] / "rules"


@pytest.mark.parametrize(
    ("expression", "names"),
    [
        ("(max(amounts) - min(amounts)) / max(amounts)", {"amounts"}),
        ("days", {"days"}),
        ("sum(a for a in amounts) / len(amounts)", {"amounts"}),
        ("input_value > limit", {"limit"}),
        ('"team_lead"', set()),
        ("None", set()),
        ("not valid (", set()),
    ],
)
def test_variables_of_an_expression_are_its_free_data_names(expression, names):
    assert variables_of(expression) == names


@pytest.mark.parametrize(
    ("file", "names"),
    [("loan_amount.dmn", {"amounts"}), ("loan_term.dmn", {"terms"}), ("leave_authority.dmn", {"days"})],
)
def test_each_product_table_reads_exactly_its_documented_input(file, names):
    table = deployed_table(-1, (RULES / file).read_text(encoding="utf-8"))
    assert required_inputs(table) == names
    assert known_inputs(table) == names

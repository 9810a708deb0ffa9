"""DMN decision tables evaluated with the checks SpiffWorkflow does not make.

SpiffWorkflow's DMN engine returns the first match under UNIQUE, silently returns
nothing when no rule matches, and ignores `typeRef`. Ours evaluates every rule through
the sandbox, insists on exactly one match under UNIQUE (naming the rules otherwise),
treats no match as an error, and coerces outputs to their declared type. The lifecycle's
business rule tasks and `POST /decisions/{id}/evaluate` share this one evaluator.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal, InvalidOperation
from functools import lru_cache
from itertools import pairwise
from typing import Any

from lxml import etree
from SpiffWorkflow.dmn.parser.BpmnDmnParser import BpmnDmnParser
from SpiffWorkflow.dmn.specs.model import DecisionTable
from SpiffWorkflow.spiff.parser.process import VALIDATOR

from app.workflow import sandbox

SUPPORTED_HIT_POLICIES = ("UNIQUE", "FIRST")
_INPUT_NAME = "input_value"
_QUESTION = re.compile(r"\?(?=(?:[^'\"]|['\"][^'\"]*['\"])*$)")
_DECIMAL_TEXT = re.compile(r"^-?\d+(\.\d+)?$")


class DecisionError(ValueError):
    """A decision could not produce one well-typed answer.

    The text (English, with any Python exception's detail) is for logs and workflow
    incidents. `kind` and `params` say what failed in terms a caller can show a user
    without leaking that detail: `input_failed` (params `input`, `names`), `no_match`
    (`values`), `ambiguous` (`rules`), `rule_failed` (`rule`, `names`), `output_failed` and
    `output_type` (`output`, `type`).
    """

    def __init__(self, decision_id: str, message: str, kind: str = "failed", **params: Any) -> None:
        super().__init__(f"decision '{decision_id}': {message}")
        self.decision_id = decision_id
        self.kind = kind
        self.params = params


def coerce_inputs(value: Any) -> Any:
    """Client JSON → decision values: decimal strings and floats become Decimal."""
    if isinstance(value, dict):
        return {k: coerce_inputs(v) for k, v in value.items()}
    if isinstance(value, list):
        return [coerce_inputs(v) for v in value]
    if isinstance(value, float):
        return Decimal(str(value))
    if isinstance(value, str) and _DECIMAL_TEXT.match(value.strip()):
        try:
            return Decimal(value.strip())
        except InvalidOperation:
            return value
    return value


def _is_standalone(text: str) -> bool:
    try:
        ast.parse(text, mode="eval")
    except SyntaxError:
        return False
    return True


def entry_expression(text: str) -> str:
    """An input entry as a full expression over `input_value` (the spiff cell dialect:
    `?` stands for the input, a bare value means equality, else the text is appended)."""
    if _QUESTION.search(text):
        return _QUESTION.sub(_INPUT_NAME, text)
    if _is_standalone(text):
        return f"{_INPUT_NAME} == ({text})"
    return f"{_INPUT_NAME} {text}"


def typed_value(decision_id: str, name: str, type_ref: str | None, value: Any) -> Any:
    """An output value as its column's `typeRef` declares it (Decimal, int, …), or DecisionError."""
    if value is None or value == "":
        return None
    kind = (type_ref or "").lower()
    try:
        if kind in ("number", "double", "decimal", "long"):
            if isinstance(value, bool):
                raise TypeError
            return Decimal(str(value)) if isinstance(value, (int, float)) else Decimal(value)
        if kind == "integer":
            number = Decimal(str(value))
            if isinstance(value, bool) or not number.is_finite() or number.adjusted() >= sandbox.MAX_INT_DIGITS:
                raise TypeError  # (no int is infinite; int() of 1e100000000 writes out 10**8 digits)
            if number != number.to_integral_value():
                raise TypeError
            return int(number)
        if kind == "string" and not isinstance(value, str):
            raise TypeError
        if kind == "boolean" and not isinstance(value, bool):
            raise TypeError
    except (TypeError, InvalidOperation, ValueError):
        raise DecisionError(
            decision_id,
            f"output '{name}' = {value!r} is not of type {type_ref}",
            "output_type",
            output=name,
            type=type_ref,
        ) from None
    return value


def evaluate_table(decision_id: str, table: DecisionTable, data: dict[str, Any]) -> dict[str, Any]:
    """Evaluate one table over `data` and return its outputs by name."""
    names = dict(data)
    values = {}
    for inp in table.inputs:
        try:
            values[inp.id] = sandbox.evaluate(inp.expression, names)
        except sandbox.UnsafeExpression:
            raise
        except Exception as exc:  # a missing variable or a bad type in the inputs
            raise DecisionError(
                decision_id,
                f"input could not be evaluated: {sandbox.error_text(exc)}",
                "input_failed",
                input=inp.label or inp.expression,
                names=sorted(variables_of(inp.expression)),
            ) from exc
    matched = []
    for index, rule in enumerate(table.rules, start=1):
        if _rule_matches(decision_id, rule, values, names):
            matched.append((index, rule))
            if table.hit_policy == "FIRST":
                break
    if not matched:
        shown = values_for_message(values, table)
        raise DecisionError(decision_id, f"no rule matched the inputs {shown}", "no_match", values=shown)
    if table.hit_policy == "UNIQUE" and len(matched) > 1:
        rows = ", ".join(f"rule {index}" for index, _ in matched)
        raise DecisionError(
            decision_id,
            f"hit policy UNIQUE but {rows} all matched",
            "ambiguous",
            rules=[index for index, _ in matched],
        )
    _, rule = matched[0]
    outputs: dict[str, Any] = {}
    for entry in rule.outputEntries:
        name = entry.output.name or entry.output.label
        text = (entry.text or "").strip()
        try:
            raw = sandbox.evaluate(text, names) if text else None
        except sandbox.UnsafeExpression:
            raise
        except Exception as exc:  # e.g. median([]) or a bad type the inputs let through
            raise DecisionError(
                decision_id,
                f"output '{name}' could not be evaluated: {sandbox.error_text(exc)}",
                "output_failed",
                output=name,
            ) from exc
        outputs[name] = typed_value(decision_id, name, entry.output.typeRef, raw)
    return outputs


def values_for_message(values: dict[str, Any], table: DecisionTable) -> str:
    """Render input values for an error message."""
    labels = {inp.id: inp.label or inp.expression for inp in table.inputs}
    return ", ".join(f"{labels[key]}={value}" for key, value in values.items())


def _rule_matches(decision_id: str, rule: Any, values: dict[str, Any], names: dict[str, Any]) -> bool:
    for entry in rule.inputEntries:
        for text in entry.lhs:
            if text is None or not str(text).strip():
                continue
            try:
                if not sandbox.evaluate(entry_expression(str(text)), {**names, _INPUT_NAME: values[entry.input.id]}):
                    return False
            except sandbox.UnsafeExpression:
                raise
            except Exception as exc:
                label = rule.row_number or rule.id
                names = sorted(variables_of(entry.input.expression) | variables_of(entry_expression(str(text))))
                raise DecisionError(
                    decision_id, f"rule {label}: {sandbox.error_text(exc)}", "rule_failed", rule=label, names=names
                ) from exc
    return True


def variables_of(expression: str) -> set[str]:
    """The data names an expression reads: its free names, without the sandbox's
    functions and the names its own comprehensions bind (`a` in `[a for a in xs]`)."""
    try:
        tree = ast.parse(expression, mode="eval")
    except SyntaxError:
        return set()
    read, bound = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            (read if isinstance(node.ctx, ast.Load) else bound).add(node.id)
    return {name for name in read - bound if name not in sandbox.SAFE_FUNCTIONS and name != _INPUT_NAME}


def required_inputs(table: DecisionTable) -> set[str]:
    """The names every evaluation needs: those read by the table's input expressions."""
    return {name for inp in table.inputs for name in variables_of(inp.expression)}


def known_inputs(table: DecisionTable) -> set[str]:
    """Every name the table may read: its input expressions, rule cells and outputs."""
    names = required_inputs(table)
    for rule in table.rules:
        for entry in rule.inputEntries:
            for text in entry.lhs:
                if text is not None and str(text).strip():
                    names |= variables_of(entry_expression(str(text)))
        for entry in rule.outputEntries:
            names |= variables_of((entry.text or "").strip() or "None")
    return names


_COMPARISON_NODES = (ast.Expression, ast.Compare, ast.Name, ast.Load, ast.cmpop, ast.BoolOp, ast.And, ast.Constant)
_NUMERIC_TYPES = frozenset({"number", "integer", "long", "double", "decimal"})


@dataclass(frozen=True)
class _Cell:
    """What the coverage check needs of one input entry that reads nothing but the input."""

    text: str
    numbers: list[Decimal]  # its number literals: the boundaries
    compares_with_text: bool  # the input compared with a text or a boolean (`"low"`, `? == True`)
    comparison_only: bool  # compares the input with numbers and nothing else (`0.10 < ? <= 0.30`)


def _cell(text: str) -> _Cell | None:
    """The entry's literals, or None when it reads other data than the input (or does not
    parse): such a table is not judged here."""
    try:
        tree = ast.parse(entry_expression(text), mode="eval")
    except SyntaxError:
        return None
    numbers: list[Decimal] = []
    compares_with_text = False
    comparison_only = True
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id != _INPUT_NAME and node.id not in sandbox.SAFE_FUNCTIONS:
            return None
        if isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
            if any(isinstance(o, ast.Name) and o.id == _INPUT_NAME for o in operands) and any(
                isinstance(o, ast.Constant) and isinstance(o.value, (str, bool)) for o in operands
            ):
                compares_with_text = True
        if isinstance(node, ast.Constant):
            if isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
                numbers.append(Decimal(str(node.value)))
            else:
                comparison_only = False  # `? != None`, `Decimal("0.10")`: tried, no boundary
        elif not isinstance(node, _COMPARISON_NODES):
            comparison_only = False
    return _Cell(text, numbers, compares_with_text, comparison_only)


def _plain(value: Decimal) -> str:
    """10, not 1E+1."""
    return format(value.normalize(), "f")


def _rule_label(index: int, rule: Any) -> str:
    """Rule 2 of the table, with its element id when it has one."""
    return f"{index} ({rule.id})" if getattr(rule, "id", None) else str(index)


def coverage_problems(table: DecisionTable) -> list[str]:
    """Gaps, overlaps and type mismatches of a one-input table whose cells read only the
    input (a spread, a gap in months, leave days).

    A number input (`typeRef` number/integer/…) compared with a text or a boolean (`"low"`,
    `True`) never matches as meant: refused. Otherwise the cells are tried, from the
    smallest number boundary up, at every boundary, a point just either side of it (the
    next whole number for an `integer` input), the midpoints between boundaries and a
    point beyond the last. A gap would leave a task stuck at run time ("no rule
    matched"); an overlap breaks UNIQUE. A table is tried when its input is declared a
    number or all its cells compare the input with numbers; tables of any other shape
    (several inputs, cells reading other data) are not judged here."""
    if len(table.inputs) != 1 or not table.rules:
        return []
    numeric_input = (table.inputs[0].typeRef or "").lower() in _NUMERIC_TYPES
    cells: list[list[_Cell]] = []
    problems: list[str] = []
    for index, rule in enumerate(table.rules, start=1):
        texts = [str(t).strip() for entry in rule.inputEntries for t in entry.lhs if t is not None and str(t).strip()]
        found = [_cell(text) for text in texts if text != "-"]
        if any(cell is None for cell in found):
            return problems
        cells.append([cell for cell in found if cell is not None])
        for cell in cells[-1]:
            if numeric_input and cell.compares_with_text:
                label = _rule_label(index, rule)
                problems.append(
                    f"规则 {label} 的条件 {cell.text} 把数字输入与文字或真假值比较 "
                    f"(rule {label}: the entry {cell.text} compares the number input with a text or a boolean)"
                )
    if problems:
        return problems
    constants = {number for row in cells for cell in row for number in cell.numbers}
    if not constants or not (numeric_input or all(cell.comparison_only for row in cells for cell in row)):
        return []
    bounds = sorted(constants)
    if (table.inputs[0].typeRef or "").lower() in ("integer", "long"):  # whole numbers only
        samples = {v for b in bounds for v in (b.to_integral_value(ROUND_FLOOR), b.to_integral_value(ROUND_CEILING))}
        samples |= {v + d for v in set(samples) for d in (-1, 1)}
        samples |= {((a + b) / 2).to_integral_value(ROUND_FLOOR) for a, b in pairwise(bounds)}
    else:
        step = min([b - a for a, b in pairwise(bounds)] + [Decimal(1)]) / 1000
        samples = set(bounds) | {b + step for b in bounds} | {b - step for b in bounds}
        samples |= {(a + b) / 2 for a, b in pairwise(bounds)} | {bounds[-1] + 1}
    # Values below the smallest boundary are not judged: a table may start where its input
    # does (leave of `1 <= ? <= 3` days, the inputs checked to be ≥ 1).
    first_only = table.hit_policy == "FIRST"  # as at run time: later rules are not evaluated
    for value in sorted(v for v in samples if v >= bounds[0]):
        matched = []
        for index, (rule, row) in enumerate(zip(table.rules, cells, strict=True), start=1):
            try:
                if all(sandbox.evaluate(entry_expression(cell.text), {_INPUT_NAME: value}) for cell in row):
                    matched.append(_rule_label(index, rule))
                    if first_only:
                        break
            except Exception as exc:  # (a guard of the sandbox too: it would stop every such run)
                label = _rule_label(index, rule)
                reason = sandbox.error_text(exc)
                return [
                    f"规则 {label} 无法对输入值 {_plain(value)} 求值：{reason} "
                    f"(rule {label} cannot be evaluated for the input value {_plain(value)}: {reason})"
                ]
        if not matched:
            problems.append(f"没有规则匹配输入值 {_plain(value)} (no rule matches the input value {_plain(value)})")
        elif len(matched) > 1 and table.hit_policy == "UNIQUE":
            rules = ", ".join(matched)
            problems.append(
                f"命中策略为 UNIQUE，但规则 {rules} 同时匹配输入值 {_plain(value)} "
                f"(rules {rules} all match the input value {_plain(value)})"
            )
        if len(problems) >= 3:
            break
    return problems


class CheckedDecisionEngine:
    """Stands in for SpiffWorkflow's DMNEngine behind a business rule task; its result is
    placed under the decision id (`loan_amount: {strategy, final_amount}`), so two
    tables with the same output names do not overwrite each other."""

    def __init__(self, decision_id: str, decision_table: DecisionTable) -> None:
        self.decision_id = decision_id
        self.decision_table = decision_table

    def result(self, task: Any) -> dict[str, Any]:
        return {self.decision_id: evaluate_table(self.decision_id, self.decision_table, task.data)}


# Every BPMN/DMN file is read with this parser: no entities, network or DTD; comments and
# processing instructions dropped (a modeler may leave them anywhere, and the checks and the
# library's parser expect elements only: a comment inside a decision table was a 500).
SAFE_XML = etree.XMLParser(
    resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False, remove_comments=True, remove_pis=True
)


@lru_cache(maxsize=64)
def deployed_table(definition_id: int, source: str) -> DecisionTable:
    """The parsed table of a deployed decision version (versions never change: cached)."""
    return parse_table(source.encode(), str(definition_id))


def parse_table(source: bytes, file_name: str) -> DecisionTable:
    """The decision table of one DMN file."""
    parser = BpmnDmnParser(validator=VALIDATOR)
    parser.add_dmn_xml(etree.fromstring(source, SAFE_XML), filename=file_name)
    dmn_parser = next(iter(parser.dmn_parsers.values()))
    dmn_parser.parse()
    return dmn_parser.decision.decisionTables[0]

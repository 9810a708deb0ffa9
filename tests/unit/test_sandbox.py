"""The expression sandbox: escapes are refused, business expressions work, and
SpiffWorkflow runs scripts and gateway conditions through it."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import pytest
from SpiffWorkflow.bpmn.exceptions import WorkflowTaskException
from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.spiff.parser.process import SpiffBpmnParser
from SpiffWorkflow.util.task import TaskState

from app.workflow import sandbox
from app.workflow.sandbox import (
    SAFE_FUNCTIONS,
    SandboxEnvironment,
    UnsafeExpression,
    check,
    evaluate,
    execute,
)

NAMES: dict[str, Any] = {"x": 1, "l": [1, 2, 3], "d": {"a": 1}, "s": "text"}

# (source, mode, fragment of the reason)
ESCAPES = [
    ("__import__('os').system('id')", "eval", "call of '__import__' is not allowed"),
    ("().__class__.__base__.__subclasses__()", "eval", "attribute '__class__'"),
    ("open('/etc/passwd').read()", "eval", "call of 'open' is not allowed"),
    ("exec('1')", "eval", "call of 'exec' is not allowed"),
    ("eval('1')", "eval", "call of 'eval' is not allowed"),
    ("getattr(x, 'y')", "eval", "call of 'getattr' is not allowed"),
    ("globals()", "eval", "call of 'globals' is not allowed"),
    ("import os", "exec", "import is not allowed"),
    ("from os import system", "exec", "import is not allowed"),
    ("lambda: 1", "eval", "lambda is not allowed"),
    ("[c for c in ().__class__.__mro__]", "eval", "attribute '__class__'"),
    ('"{0.__class__}".format(1)', "eval", "attribute 'format' is not allowed"),
    ('"{x}".format_map(d)', "eval", "attribute 'format_map' is not allowed"),
    ("9**9**9", "eval", "'**' is only allowed with an int literal exponent"),
    ("2 ** 65", "eval", "'**' is only allowed with an int literal exponent"),
    ("x._secret", "eval", "attribute '_secret' is not allowed"),
    ("__builtins__", "eval", "name '__builtins__' is not allowed"),
    ("_hidden + 1", "eval", "name '_hidden' is not allowed"),
    ("x.get", "eval", "attribute 'get' is only allowed as a method call"),
    ("x.real", "eval", "attribute 'real' is not allowed"),
    ("max", "eval", "function 'max' may only be called"),
    ("[max][0]([1])", "eval", "call of '[max][0]' is not allowed"),
    ("(max)", "eval", "function 'max' may only be called"),
    ("l[0](1)", "eval", "call of 'l[0]' is not allowed"),
    ("sorted(l, key=len)", "eval", "keyword argument 'key' is not allowed"),
    ("max(*l)", "eval", "starred expression (*) is not allowed"),
    ("{**d}", "eval", "dict unpacking (**) is not allowed"),
    ("f'{x}'", "eval", "f-string is not allowed"),
    ("(y := 1)", "eval", "assignment expression (:=) is not allowed"),
    ("b'bytes'", "eval", "bytes literal is not allowed"),
    ("10000000000000000", "eval", "integer literal larger than 10**15"),
    ("1 << 3", "eval", "operator LShift is not allowed"),
    ("(a for a in l)", "eval", "generator expression outside a call argument"),
    ("def f():\n    pass", "exec", "function definition is not allowed"),
    ("class C:\n    pass", "exec", "class definition is not allowed"),
    ("for i in l:\n    pass", "exec", "for loop is not allowed"),
    ("while True:\n    pass", "exec", "while loop is not allowed"),
    ("with x:\n    pass", "exec", "with statement is not allowed"),
    ("try:\n    pass\nexcept Exception:\n    pass", "exec", "try statement"),
    ("global x", "exec", "global statement is not allowed"),
    ("del x", "exec", "del statement is not allowed"),
    ("x.y = 1", "exec", "attribute access as a target is not allowed"),
    ("max = 1", "exec", "assignment to 'max' is not allowed"),
    ("_x = 1", "exec", "name '_x' is not allowed"),
    ("1 +", "eval", "syntax error"),
    ("1 + " * 1_001 + "1", "eval", "expression is too long"),
    ("[" + "1, " * 600 + "]", "eval", "expression is too complex"),
    ("-" * 150 + "1", "eval", "expression is nested too deeply"),
]


def _run(source: str, mode: str) -> Any:
    if mode == "eval":
        return evaluate(source, dict(NAMES))
    return execute(source, dict(NAMES))


@pytest.mark.parametrize(("source", "mode", "reason"), ESCAPES)
def test_escape_is_refused_at_check_time(source: str, mode: str, reason: str) -> None:
    with pytest.raises(UnsafeExpression) as caught:
        check(source, mode)  # type: ignore[arg-type]
    assert reason in caught.value.reason
    assert caught.value.expression == source


@pytest.mark.parametrize(("source", "mode", "reason"), ESCAPES)
def test_escape_is_refused_at_evaluate_time(source: str, mode: str, reason: str) -> None:
    with pytest.raises(UnsafeExpression) as caught:
        _run(source, mode)
    assert reason in caught.value.reason


def test_refused_escape_has_no_side_effect(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    with pytest.raises(UnsafeExpression):
        execute(f"__import__('os').system('touch {marker}')", {})
    assert not marker.exists()


def test_refusal_reports_the_line() -> None:
    with pytest.raises(UnsafeExpression) as caught:
        check("a = 1\nb = open('x')", "exec")
    assert caught.value.lineno == 2
    assert str(caught.value) == "call of 'open' is not allowed (line 2)"


def test_eval_mode_refuses_statements() -> None:
    with pytest.raises(UnsafeExpression, match="syntax error"):
        check("x = 1", "eval")


@pytest.mark.parametrize(
    ("source", "names"),
    [
        ('"ab" * 1000000', {}),
        ("[0] * 10**7", {}),
        ("s + s", {"s": "x" * 600_000}),
        (" * ".join(["(10**15) ** 64"] * 5), {}),
        ("int(1e999999)", {}),
        ("floor(big)", {"big": Decimal("1E+999999")}),
        ("round(1e5000)", {}),
        ("round(5, -10**15)", {}),
        ('"%s" % x', {"x": 1}),
    ],
)
def test_runtime_amplifier_is_refused(source: str, names: dict[str, Any]) -> None:
    with pytest.raises(UnsafeExpression, match=r"too large|not allowed"):
        evaluate(source, names)


@pytest.mark.parametrize(
    ("source", "mode", "reason"),
    [
        ('"%s" % amounts', "eval", "string formatting with '%' is not allowed"),
        ('"x" * 10 ** 9', "eval", "result of '*' is too large"),
        ("[0] * 10 ** 9", "eval", "result of '*' is too large"),
        ("1 / 0", "eval", "`1 / 0` always fails: DivisionByZero"),
        ('x = {"a": 1}["b"]', "exec", "always fails: KeyError"),
        ('"abc"[5] + amount', "eval", '`"abc"[5]` always fails: IndexError'),
        ("[[0] * 999999, [0] * 999999, 1 / 0]", "eval", "`1 / 0` always fails"),
        ("ok = amount > 0\nlimit = 10 ** 64 ** 2", "exec", "'**' is only allowed"),
    ],
)
def test_deployment_refuses_what_would_fail_on_every_run(source: str, mode: str, reason: str) -> None:
    """Constant sub-expressions are run once by `check` (deployment) under the run-time
    guards: a diagram holding one that always fails is refused before it is stored."""
    with pytest.raises(UnsafeExpression) as caught:
        check(source, mode)  # type: ignore[arg-type]
    assert reason in str(caught.value)


@pytest.mark.parametrize(
    "source",
    [
        "floor(min(amounts))",
        "floor(1.5) + amount",
        "amount / (1 - 1)",  # fails on every run too, but only its constant part is run here
        'len("abc") > 2 and amount > 1',
        "[a * 2 for a in amounts]",
        'amount if amount > 0 else Decimal("0")',
    ],
)
def test_constant_parts_that_work_pass_the_deployment_check(source: str) -> None:
    check(source, "eval")


@pytest.mark.parametrize(
    ("source", "mode"),
    [
        # a branch that may never run: a deliberate stop, or a case that cannot arise
        ("amount if amount > 0 else 1 / 0", "eval"),
        ('ok and {"a": 1}["b"]', "eval"),
        ("amount < 1 < 1 / 0", "eval"),
        ("[1 / 0 for x in items]", "eval"),
        ('if mode == "bad":\n    stop = 1 / 0', "exec"),
        # computing these at deployment would take the worker minutes or gigabytes; they
        # are not computed (calls and comparisons never are, long values are not built)
        ("sorted([[0] * 999999] * 999999)", "eval"),
        ("[[0] * 999999] * 999999 == [[0] * 999999] * 999999", "eval"),
        ('[list("x" * 999999)] * 60', "eval"),
        ("max([[0] * 999999] * 999999)", "eval"),
    ],
)
def test_the_deployment_check_computes_only_what_always_runs_and_is_cheap(source: str, mode: str) -> None:
    check(source, mode)  # type: ignore[arg-type]


def test_repeated_power_in_a_script_is_refused() -> None:
    script = "v = 10**15\n" + "v = v ** 64\n" * 5
    with pytest.raises(UnsafeExpression, match=r"result of '\*\*' is too large"):
        execute(script, {})


def test_repeated_augmented_doubling_is_refused() -> None:
    script = 's = "ab"\n' + "s += s\n" * 40
    with pytest.raises(UnsafeExpression, match=r"result of '\+' is too large"):
        execute(script, {})


def test_comprehension_iterations_are_budgeted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sandbox, "MAX_ITERATIONS", 110)  # 10 outer + 10 * 10 inner
    assert evaluate("sum(1 for a in l for b in l)", {"l": list(range(10))}) == 100
    with pytest.raises(UnsafeExpression, match="comprehension iterations"):
        evaluate("[1 for a in l for b in l]", {"l": list(range(11))})


# ------------------------------------------------------------------ allowed things


def test_dmn_style_comparison_is_exact() -> None:
    assert evaluate("spread <= 0.10", {"spread": Decimal("0.10")}) is True


def test_decimal_compares_exactly_with_float_literal() -> None:
    assert evaluate('Decimal("0.3") <= 0.30', {}) is True


def test_float_literal_becomes_decimal_from_source_text() -> None:
    value = evaluate("0.30", {})
    assert isinstance(value, Decimal)
    assert str(value) == "0.30"


def test_float_literal_arithmetic_is_decimal() -> None:
    assert evaluate("0.1 + 0.2 == 0.3", {}) is True


def test_int_division_gives_decimal() -> None:
    assert evaluate("7 / 2", {}) == Decimal("3.5")
    assert isinstance(evaluate("7 / 2", {}), Decimal)


def test_floor_of_median_of_decimals() -> None:
    source = 'floor(median([Decimal("100000"), Decimal("80000")]))'
    result = evaluate(source, {})
    assert result == 90000
    assert type(result) is int


@pytest.mark.parametrize(
    ("values", "expected", "kind"),
    [
        ([12, 13], Decimal("12.5"), Decimal),
        ([3, 1, 2], 2, int),
        ([Decimal("1.10"), Decimal("1.30")], Decimal("1.20"), Decimal),
        ([Decimal("5")], Decimal("5"), Decimal),
    ],
)
def test_median(values: list[Any], expected: Any, kind: type) -> None:
    result = evaluate("median(values)", {"values": values})
    assert result == expected
    assert type(result) is kind


def test_median_of_nothing_is_an_error() -> None:
    with pytest.raises(ValueError, match="empty"):
        evaluate("median([])", {})


def test_decimal_and_int_mix() -> None:
    rates = [Decimal("0.041"), Decimal("0.043"), 0]
    result = evaluate("(max(a) - min(a)) / max(a) + 1", {"a": rates})
    assert result == Decimal("2")


def test_ternary() -> None:
    source = '"high" if score >= 700 else "low"'
    assert evaluate(source, {"score": 720}) == "high"
    assert evaluate(source, {"score": 650}) == "low"


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("sorted(l, reverse=True)", [3, 2, 1]),
        ("max([], default=0)", 0),
        ("d.get('missing', 5)", 5),
        ("{k: v for k, v in d.items()}", {"a": 1}),
        ("s.upper().startswith('TE')", True),
        ("len({n % 2 for n in l})", 2),
        ("l[::-1][0:2]", [3, 2]),
        ("0 < x <= 3 and x not in l[1:] and s is not None", True),
        ("all(n > 0 for n in l) and not any(n > 5 for n in l)", True),
        ("abs(-2) + round(Decimal('2.5')) + int('3') + ceil(0.1)", 8),
        ("str(x) + str(bool(x))", "1True"),
        ("2 ** 10", 1024),
        ("-x", -1),
    ],
)
def test_allowed_expression(source: str, expected: Any) -> None:
    assert evaluate(source, NAMES) == expected


def test_data_names_cannot_shadow_safe_functions() -> None:
    assert evaluate("max([1, 2])", {"max": 99}) == 2


def test_evaluate_does_not_modify_names() -> None:
    names = {"l": [1, 2]}
    evaluate("[n * 2 for n in l]", names)
    assert names == {"l": [1, 2]}


SCRIPT = """\
offers = [o for o in quotes if o.get("status") == "ok"]
rates = [o.get("rate") for o in offers if o.get("rate") is not None]
best = min(rates)
spread = (max(rates) - best) / max(rates)
decision = "approve" if spread <= 0.10 else "review"
"""


def test_script_filters_dicts_and_writes_back_assignments() -> None:
    names: dict[str, Any] = {
        "quotes": [
            {"status": "ok", "rate": Decimal("0.050")},
            {"status": "ok", "rate": Decimal("0.046")},
            {"status": "failed", "rate": Decimal("0.010")},
            {"status": "ok"},
        ]
    }
    execute(SCRIPT, names)
    assert names["rates"] == [Decimal("0.050"), Decimal("0.046")]
    assert names["best"] == Decimal("0.046")
    assert names["spread"] == Decimal("0.08")
    assert names["decision"] == "approve"
    assert "o" not in names  # comprehension variables stay local


def test_script_if_else_and_augmented_assignment() -> None:
    names: dict[str, Any] = {"score": 10, "flags": {"n": 1}, "items": [1]}
    script = (
        "if score > 5:\n"
        "    score += 1\n"
        "    flags['n'] *= 3\n"
        "elif score > 0:\n"
        "    pass\n"
        "else:\n"
        "    skipped = True\n"
        "items += [2]\n"
        "a, b = b_src, 2\n"
    )
    names["b_src"] = 1
    execute(script, names)
    assert names["score"] == 11
    assert names["flags"] == {"n": 3}
    assert names["items"] == [1, 2]
    assert (names["a"], names["b"]) == (1, 2)
    assert "skipped" not in names


def test_script_tolerates_xml_indentation() -> None:
    names: dict[str, Any] = {}
    execute("\n    a = 1\n    b = a + 1\n", names)
    assert names == {"a": 1, "b": 2}


def test_compiled_code_is_cached() -> None:
    first = sandbox._compile("x + 1", "eval")
    assert sandbox._compile("x + 1", "eval") is first


def test_safe_functions_are_exactly_the_documented_set() -> None:
    assert set(SAFE_FUNCTIONS) == {
        "min",
        "max",
        "len",
        "sum",
        "sorted",
        "abs",
        "round",
        "int",
        "str",
        "bool",
        "list",
        "any",
        "all",
        "Decimal",
        "floor",
        "ceil",
        "median",
    }


# ------------------------------------------------------------- SandboxEnvironment


def test_environment_evaluate_sees_task_data_and_external_context() -> None:
    env = SandboxEnvironment()
    context = {"rate": Decimal("0.05")}
    assert env.evaluate("rate < limit", context, {"limit": 0.06}) is True
    assert context == {"rate": Decimal("0.05")}


def test_environment_execute_writes_assignments_but_not_external_names() -> None:
    env = SandboxEnvironment()
    context: dict[str, Any] = {"amount": 100}
    assert env.execute("total = amount + fee\nfee = 0", context, {"fee": 5}) is True
    assert context == {"amount": 100, "total": 105}


def test_environment_refuses_service_calls() -> None:
    with pytest.raises(NotImplementedError, match="service"):
        SandboxEnvironment().call_service({}, operation_name="x")


BPMN = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
    xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
    id="defs" targetNamespace="http://example.org/sandbox">
  <bpmn:process id="sandbox_demo" isExecutable="true">
    <bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="score"/>
    <bpmn:scriptTask id="score" name="Score">
      <bpmn:incoming>f1</bpmn:incoming>
      <bpmn:outgoing>f2</bpmn:outgoing>
      <bpmn:script>{script}</bpmn:script>
    </bpmn:scriptTask>
    <bpmn:sequenceFlow id="f2" sourceRef="score" targetRef="gateway"/>
    <bpmn:exclusiveGateway id="gateway" default="to_review">
      <bpmn:incoming>f2</bpmn:incoming>
      <bpmn:outgoing>to_approved</bpmn:outgoing>
      <bpmn:outgoing>to_review</bpmn:outgoing>
    </bpmn:exclusiveGateway>
    <bpmn:sequenceFlow id="to_approved" sourceRef="gateway" targetRef="approved">
      <bpmn:conditionExpression xsi:type="bpmn:tFormalExpression">{condition}\
</bpmn:conditionExpression>
    </bpmn:sequenceFlow>
    <bpmn:sequenceFlow id="to_review" sourceRef="gateway" targetRef="review"/>
    <bpmn:endEvent id="approved"><bpmn:incoming>to_approved</bpmn:incoming>\
</bpmn:endEvent>
    <bpmn:endEvent id="review"><bpmn:incoming>to_review</bpmn:incoming></bpmn:endEvent>
  </bpmn:process>
</bpmn:definitions>
"""

WORKFLOW_SCRIPT = """\
rates = [q.get("rate") for q in quotes if q.get("rate") is not None]
spread = (max(rates) - min(rates)) / max(rates)
middle = median(rates)
threshold = 0.10
"""


def _workflow(script: str, condition: str = "spread <= threshold") -> BpmnWorkflow:
    parser = SpiffBpmnParser()
    xml = BPMN.format(script=escape(script), condition=escape(condition))
    parser.add_bpmn_str(xml.encode("utf-8"))
    engine = PythonScriptEngine(environment=SandboxEnvironment())
    return BpmnWorkflow(parser.get_spec("sandbox_demo"), script_engine=engine)


def _start(workflow: BpmnWorkflow, data: dict[str, Any]) -> None:
    for task in workflow.get_tasks(state=TaskState.READY):
        task.data.update(data)
    workflow.do_engine_steps()


@pytest.mark.parametrize(
    ("rates", "end"),
    [
        ([Decimal("0.050"), Decimal("0.046")], "approved"),
        ([Decimal("0.050"), Decimal("0.030")], "review"),
    ],
)
def test_workflow_script_and_gateway_run_in_sandbox(rates: list[Decimal], end: str) -> None:
    workflow = _workflow(WORKFLOW_SCRIPT)
    _start(workflow, {"quotes": [{"rate": rate} for rate in rates] + [{}]})
    assert workflow.is_completed()
    completed = {t.task_spec.name for t in workflow.get_tasks(state=TaskState.COMPLETED)}
    assert end in completed
    data = workflow.last_task.data
    # Sandbox-only behaviour: median() exists and 0.10 is an exact Decimal.
    assert data["threshold"] == Decimal("0.10")
    assert isinstance(data["threshold"], Decimal)
    assert data["middle"] == (rates[0] + rates[1]) / 2


def test_workflow_script_escape_raises() -> None:
    workflow = _workflow('x = __import__("os").getcwd()')
    with pytest.raises(WorkflowTaskException) as caught:
        _start(workflow, {})
    assert caught.value.error_type == "UnsafeExpression"
    assert "call of '__import__' is not allowed" in str(caught.value)
    assert isinstance(caught.value.__context__, UnsafeExpression)
    assert "x" not in workflow.get_tasks(spec_name="score")[0].data


def test_workflow_gateway_escape_raises() -> None:
    workflow = _workflow("spread = 0", condition="().__class__.__base__")
    with pytest.raises(WorkflowTaskException) as caught:
        _start(workflow, {})
    # SpiffWorkflow's message only names the expression; the cause is chained.
    assert caught.value.error_type == "UnsafeExpression"
    cause = caught.value.__context__
    assert isinstance(cause, UnsafeExpression)
    assert cause.reason == "attribute '__class__' is not allowed"


def test_printing_a_list_of_shared_huge_strings_is_refused() -> None:
    names = {"s": "a" * 1_000_000}
    with pytest.raises(UnsafeExpression, match="too large"):
        evaluate("len(str([s] * 1000))", names)


def test_summing_lists_into_a_huge_list_is_refused() -> None:
    names = {"chunk": list(range(1000))}
    with pytest.raises(UnsafeExpression, match="too large"):
        evaluate("len(sum([chunk] * 2000, []))", names)


def test_ordinary_str_and_sum_still_work() -> None:
    assert evaluate("str(12) + '期'", {}) == "12期"
    assert evaluate("sum([1, 2, 3])", {}) == 6


@pytest.mark.parametrize(
    ("source", "mode"),
    [
        ("[[0] * 1000000] * 1000000 == [[0] * 1000000] * 1000000", "eval"),  # 10**12 items compared
        ("x = [0] * 1000\nx = [x] * 1000\nx = [x] * 1000", "exec"),  # 10**9 items once written out
        ("int('f' * 1000000, 16) // 3", "eval"),  # CPython leaves power-of-two bases unbounded
        ("int('f' * 4000, 16)", "eval"),  # short enough a text, too large a number
        ("len(['a' * 1000000] * 1000000)", "eval"),  # texts inside a list expand too
    ],
)
def test_values_that_expand_beyond_the_limit_are_refused_before_they_are_built(source, mode):
    """A repeated sequence of references counts as it expands (comparing, printing or
    storing it walks every item), not as it is stored; these froze the whole server."""
    with pytest.raises(UnsafeExpression):
        if mode == "eval":
            sandbox.evaluate(source, {})
        else:
            sandbox.execute(source, {})


def test_summing_many_lists_joins_them_once_with_the_same_result():
    """`sum` adds one list at a time, copying the growing result: 300,000 one-item lists
    were 4.5e10 copies. Joined once, the answer is the same."""
    assert sandbox.evaluate("sum([[0]] * 300000, [])", {}) == [0] * 300000
    assert sandbox.evaluate("sum([(1, 2), (3,)], ())", {}) == (1, 2, 3)
    assert sandbox.evaluate("sum([[1], [2]], [0])", {}) == [0, 1, 2]
    with pytest.raises(TypeError):
        sandbox.evaluate("sum([[1], (2,)], [])", {})  # as Python says it


def test_an_integer_output_of_a_hundred_million_digits_is_refused_not_written_out():
    from app.workflow.decisions import DecisionError, typed_value

    for huge in (Decimal("1E+100000000"), Decimal("Infinity"), "-inf"):
        with pytest.raises(DecisionError):  # ("inf" was an OverflowError: a 500 at deployment)
            typed_value("loan_term", "final_term", "integer", huge)
    assert typed_value("loan_term", "final_term", "integer", Decimal("12")) == 12


def test_what_one_run_builds_is_bounded_in_total_not_only_per_value():
    """A thousand lists of a million items each passed every per-value bound (8 GB)."""
    with pytest.raises(UnsafeExpression, match="items built in one run"):
        sandbox.evaluate("[[0] * 1000000 for c in 'a' * 1000]", {})
    for copy in ("list(x)", "sorted(x)", "sum([x], [])"):  # copies count too
        with pytest.raises(UnsafeExpression, match="items built in one run"):
            sandbox.evaluate(f"[{copy} for c in 'a' * 30]", {"x": [0] * 400000})
    assert len(sandbox.evaluate("[[0] * 1000 for c in 'a' * 1000]", {})) == 1000  # a million in all
    names: dict[str, Any] = {}
    sandbox.execute("x = [0] * 1000000\ny = [0] * 1000000", names)  # each run counts afresh
    sandbox.execute("x = [0] * 1000000\ny = [0] * 1000000", names)

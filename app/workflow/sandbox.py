"""Restricted evaluation of the expressions and scripts inside uploaded BPMN/DMN files.

SpiffWorkflow evaluates every gateway condition, script task, pre/post script, timer,
multi-instance expression and DMN cell with plain ``eval``/``exec``.  The process
files are uploaded by analysts and therefore untrusted, and an empty
``__builtins__`` does not make ``eval`` safe: ``().__class__.__base__.__subclasses__()``
reaches every class in the interpreter.  This module is the only way such text is run:

* :func:`check` parses the text and validates the syntax tree against an allowlist
  (deployment calls it for every expression; it is cheap and cached);
* :func:`evaluate` / :func:`execute` run checked code with ``{"__builtins__": {}}``,
  the :data:`SAFE_FUNCTIONS` and the caller's names as the only globals;
* :class:`SandboxEnvironment` plugs both into SpiffWorkflow's ``PythonScriptEngine``.

The allowlist (anything not listed is refused with a reason naming the construct):

* ``eval`` mode is one expression; ``exec`` mode is a module made of assignments
  (targets: a name, ``name[...]`` or a flat tuple of names), augmented assignments,
  ``if``/``elif``/``else``, bare expressions and ``pass``.
* Expressions: literals (no bytes/complex), names not starting with ``_``, the
  operators ``+ - * / // %`` and ``**`` with an int literal exponent 0..64, unary
  operators, ``and``/``or``/``not``, every comparison, ``x if c else y``, list/tuple/
  dict/set displays (no ``*``/``**`` unpacking), subscripts and slices, list/set/dict
  comprehensions, generator expressions as a call argument, calls of
  :data:`SAFE_FUNCTIONS` (keywords ``reverse``/``default`` only) and the methods in
  :data:`ALLOWED_METHODS`.  Every other attribute access is refused.
* f-strings are refused (format specs such as ``{x:>999999999}`` are a memory bomb and
  the nested expressions would need their own rules); ``str()`` and ``+`` suffice.
* Safe functions may only be called, never referenced as values or rebound, so no
  callable can leak into task data.

Numbers: float literals are rewritten to ``Decimal`` built from their *source text*
(``0.30`` is exactly ``Decimal("0.30")``) and ``int / int`` gives a ``Decimal``, so no
binary float enters loan arithmetic through an expression.

Resource bounds: source length, syntax-node count, nesting depth and integer literal
size are checked statically.  At run time ``+``, ``*``, ``**``, ``/`` and ``%`` go
through small helpers that refuse huge integers and long strings/lists, ``%`` string
formatting, and Decimal-to-int conversions of astronomically large numbers; every
comprehension draws from an iteration budget per run.  These stop the obvious
amplifiers (``"a" * 10**15``, ``x = x ** 64`` repeated); they do not bound CPU time in
general (e.g. repeatedly nesting a list into itself and then calling ``str``), so
workers still need their own time and memory limits.
"""

from __future__ import annotations

import ast
import copy
import functools
import itertools
import math
import operator
import textwrap
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from decimal import Decimal
from types import CodeType, MappingProxyType
from typing import Any, Final, Literal

from SpiffWorkflow.bpmn.script_engine.python_environment import (
    BasePythonScriptEngineEnvironment,
)

__all__ = [
    "ALLOWED_KEYWORDS",
    "ALLOWED_METHODS",
    "NOT_CONSTANT",
    "SAFE_FUNCTIONS",
    "SandboxEnvironment",
    "UnsafeExpression",
    "check",
    "constant_value",
    "error_text",
    "evaluate",
    "execute",
    "median",
]

Mode = Literal["eval", "exec"]

MAX_SOURCE_LENGTH: Final = 4_000
"""Longest accepted source text, in characters."""
MAX_NODES: Final = 500
"""Most syntax nodes in one source (Load/Store context markers are not counted)."""
MAX_DEPTH: Final = 100
"""Deepest accepted syntax-tree nesting (keeps checker and compiler off the C stack limit)."""
MAX_INT_LITERAL: Final = 10**15
"""Largest absolute value of an integer literal."""
MAX_POW_EXPONENT: Final = 64
"""Largest int literal accepted as the exponent of ``**``."""
MAX_INT_DIGITS: Final = 4_300
"""Largest integer (in decimal digits) an operation may produce; CPython's own int/str limit."""
MAX_SEQUENCE_LENGTH: Final = 1_000_000
"""Longest string/list/tuple that ``+`` or ``*`` may produce."""
MAX_ITERATIONS: Final = 1_000_000
"""Comprehension iterations allowed in one :func:`evaluate`/:func:`execute` call."""
MAX_BUILT_ITEMS: Final = 10_000_000
"""Items that ``*`` and ``+`` on sequences may build, together, in one call."""
_BUILT: ContextVar[list[int] | None] = ContextVar("ydx_sandbox_built", default=None)

ALLOWED_METHODS: Final = frozenset(
    {
        "get",
        "keys",
        "values",
        "items",
        "count",
        "index",
        "startswith",
        "endswith",
        "lower",
        "upper",
        "strip",
    }
)
"""The only attribute names accepted, and only as a method call ``x.m(...)``."""
ALLOWED_KEYWORDS: Final = frozenset({"reverse", "default"})
"""The only keyword arguments accepted (``key=`` would take a callable)."""

_MAX_INT_BITS: Final = math.ceil(MAX_INT_DIGITS * math.log2(10))
# SpiffWorkflow looks for this file name to report the failing line of a script.
_FILENAME: Final = "<string>"
_DECIMAL: Final = "__sandbox_decimal__"
_ITER: Final = "__sandbox_iter__"


class UnsafeExpression(ValueError):
    """An expression or script was refused by the sandbox.

    ``reason`` is English text naming the offending construct (``"call of 'open' is
    not allowed"``), ``expression`` the refused source and ``lineno`` its 1-based line,
    when known.  Raised by :func:`check` (including for syntax errors) and at run time
    when a resource limit is hit.
    """

    def __init__(self, reason: str, expression: str | None = None, lineno: int | None = None) -> None:
        self.reason = reason
        self.expression = expression
        self.lineno = lineno
        super().__init__(reason if lineno is None else f"{reason} (line {lineno})")

    def __reduce__(self) -> tuple[Any, ...]:
        # Keep the three attributes when pickled (e.g. by a task queue).
        return (type(self), (self.reason, self.expression, self.lineno))


# --------------------------------------------------------------------------- functions


def _as_decimal(value: Any) -> Decimal:
    if isinstance(value, Decimal):
        return value
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(repr(value))
    raise TypeError(f"median() needs numbers, not {type(value).__name__}")


def median(values: Iterable[Any]) -> Any:
    """Middle value of ``values``, exact in Decimal.

    For an odd count the middle element itself is returned (an int stays an int); for
    an even count the mean of the two middle values as a ``Decimal``
    (``median([12, 13]) == Decimal("12.5")``).  Unlike ``statistics.median`` no binary
    float is ever produced.
    """
    ordered = sorted(values)
    if not ordered:
        raise ValueError("median() arg is an empty sequence")
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return (_as_decimal(ordered[middle - 1]) + _as_decimal(ordered[middle])) / 2


def _guard_integral(value: Any, function: str) -> None:
    """Refuse turning a Decimal such as ``1E+999999`` into an int (it takes seconds)."""
    if isinstance(value, Decimal) and value.is_finite() and value.adjusted() >= MAX_INT_DIGITS:
        raise UnsafeExpression(f"{function}() of a number with more than {MAX_INT_DIGITS} digits is not allowed")


def _int(value: Any = 0, *base: Any) -> int:
    _guard_integral(value, "int")
    if isinstance(value, str) and len(value) > MAX_INT_DIGITS:
        # (CPython limits the digits of bases that are not powers of two; 'f' * 10**6 in
        # base 16 converts, and what follows — `//`, `%` — is quadratic in its size)
        raise UnsafeExpression(f"int() of a text longer than {MAX_INT_DIGITS} characters is not allowed")
    result = int(value, *base)
    if isinstance(result, int) and result.bit_length() > _MAX_INT_BITS:
        raise _too_large("int")
    return result


def _list(value: Any = ()) -> list[Any]:
    result = list(value)
    _charge(len(result))
    return result


def _sorted(value: Any, *, reverse: bool = False) -> list[Any]:
    result = sorted(value, reverse=reverse)
    _charge(len(result))
    return result


def _floor(value: Any) -> int:
    _guard_integral(value, "floor")
    return math.floor(value)


def _ceil(value: Any) -> int:
    _guard_integral(value, "ceil")
    return math.ceil(value)


def _round(number: Any, ndigits: Any = None) -> Any:
    if ndigits is None:
        _guard_integral(number, "round")
        return round(number)
    if isinstance(ndigits, int) and abs(ndigits) > MAX_INT_DIGITS:
        # round(5, -10**15) computes 10**(10**15) for an int argument.
        raise UnsafeExpression(f"round() to more than {MAX_INT_DIGITS} digits is not allowed")
    return round(number, ndigits)


def _estimated_size(value: Any) -> int:
    """An upper bound of the characters/items a value expands to when printed or
    concatenated (shared references count every time they appear)."""
    total, stack, visited = 0, [value], 0
    while stack:
        item = stack.pop()
        visited += 1
        if visited > MAX_SEQUENCE_LENGTH:
            return MAX_SEQUENCE_LENGTH + 1
        if isinstance(item, str):
            total += len(item)
        elif isinstance(item, (list, tuple, set)):
            total += len(item)
            stack.extend(item)
        elif isinstance(item, dict):
            total += len(item)
            stack.extend(item.keys())
            stack.extend(item.values())
        else:
            total += 1
        if total > MAX_SEQUENCE_LENGTH:
            return total
    return total


def _str(value: Any = "") -> str:
    if _estimated_size(value) > MAX_SEQUENCE_LENGTH:
        raise _too_large("str")
    return str(value)


def _sum(values: Any, start: Any = 0) -> Any:
    if not isinstance(start, _SEQUENCES):
        return sum(values, start)
    values = list(values)
    if _estimated_size([start, *values]) > MAX_SEQUENCE_LENGTH:
        raise _too_large("sum")
    if all(type(value) is type(start) for value in values) and not isinstance(start, str):
        # joined once: `sum` adds one list at a time, copying the growing result each time
        # (300,000 one-item lists: 4.5e10 copies)
        result = type(start)(itertools.chain(start, *values))
        _charge(len(result))
        return result
    return sum(values, start)


SAFE_FUNCTIONS: Final[Mapping[str, Callable[..., Any]]] = MappingProxyType(
    {
        "min": min,
        "max": max,
        "len": len,
        "sum": _sum,
        "sorted": _sorted,
        "abs": abs,
        "round": _round,
        "int": _int,
        "str": _str,
        "bool": bool,
        "list": _list,
        "any": any,
        "all": all,
        "Decimal": Decimal,
        "floor": _floor,
        "ceil": _ceil,
        "median": median,
    }
)
"""The only functions expressions may call.  ``int``, ``round``, ``floor`` and ``ceil``
are the builtins/``math`` versions behind a guard against giant Decimals.  Extending
this set is a security review, not a configuration change."""


# --------------------------------------------------------------- run-time operators

_SEQUENCES = (str, list, tuple)


def _too_large(symbol: str) -> UnsafeExpression:
    return UnsafeExpression(f"result of '{symbol}' is too large")


def _charge(items: int) -> None:
    """Count what one run builds with `*` and `+` on sequences: each result is bounded, and
    so is their sum (`[[0] * 10**6 for c in "a" * 1000]` is a thousand bounded lists)."""
    built = _BUILT.get()
    if built is not None:
        built[0] += items
        if built[0] > MAX_BUILT_ITEMS:
            raise UnsafeExpression(f"more than {MAX_BUILT_ITEMS} items built in one run")


def _guard_add(left: Any, right: Any) -> None:
    if isinstance(left, _SEQUENCES) and hasattr(right, "__len__"):
        if len(left) + len(right) > MAX_SEQUENCE_LENGTH:
            raise _too_large("+")
        _charge(len(left) + len(right))


def _guard_mul(left: Any, right: Any) -> None:
    if isinstance(left, int) and isinstance(right, int):
        if left.bit_length() + right.bit_length() > _MAX_INT_BITS:
            raise _too_large("*")
    elif isinstance(left, _SEQUENCES) and isinstance(right, int):
        _guard_repeat(left, right)
    elif isinstance(right, _SEQUENCES) and isinstance(left, int):
        _guard_repeat(right, left)


_FLAT_ITEMS: Final = frozenset({int, bool, float, Decimal, type(None)})


def _guard_repeat(sequence: Any, times: int) -> None:
    """The repeated sequence as it expands, not as it is stored: `[[0] * 10**6] * 10**6`
    holds a million references to one list, yet comparing, printing or storing it walks
    10**12 items."""
    if times <= 0:
        return
    size = len(sequence)
    if not isinstance(sequence, str) and not _FLAT_ITEMS.issuperset(map(type, sequence)):
        size = _estimated_size(sequence)  # items that are texts or containers expand too
    if size * times > MAX_SEQUENCE_LENGTH:
        raise _too_large("*")
    _charge(size * times)


def _guard_pow(base: Any, exponent: Any) -> None:
    if (
        isinstance(base, int)
        and isinstance(exponent, int)
        and abs(base) > 1
        and base.bit_length() * exponent > _MAX_INT_BITS
    ):
        raise _too_large("**")


def _guard_mod(left: Any, right: Any) -> None:
    if isinstance(left, str | bytes):
        raise UnsafeExpression("string formatting with '%' is not allowed")


def _no_guard(left: Any, right: Any) -> None:
    return None


def _true_divide(left: Any, right: Any) -> Any:
    """``int / int`` is a Decimal quotient, never a binary float."""
    if isinstance(left, int) and isinstance(right, int):
        return Decimal(left) / Decimal(right)
    return left / right


def _inplace_true_divide(left: Any, right: Any) -> Any:
    """``x /= y`` with the same int-to-Decimal rule as ``/``."""
    if isinstance(left, int) and isinstance(right, int):
        return Decimal(left) / Decimal(right)
    return operator.itruediv(left, right)


def _guarded(guard: Callable[[Any, Any], None], apply: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    def operation(left: Any, right: Any) -> Any:
        guard(left, right)
        return apply(left, right)

    return operation


# operator type -> (symbol, helper name suffix, guard); the guarded binary and in-place
# helpers are registered as __sandbox_<suffix>__ and __sandbox_i<suffix>__.
_OPERATORS: Final[dict[type[ast.operator], tuple[str, str, Callable[..., Any]]]] = {}
_RUNTIME_HELPERS: dict[str, Callable[..., Any]] = {}
for _op, _symbol, _name, _guard, _binary, _inplace in (
    (ast.Add, "+", "add", _guard_add, operator.add, operator.iadd),
    (ast.Sub, "-", "sub", _no_guard, operator.sub, operator.isub),
    (ast.Mult, "*", "mul", _guard_mul, operator.mul, operator.imul),
    (ast.Div, "/", "div", _no_guard, _true_divide, _inplace_true_divide),
    (ast.FloorDiv, "//", "floordiv", _no_guard, operator.floordiv, operator.ifloordiv),
    (ast.Mod, "%", "mod", _guard_mod, operator.mod, operator.imod),
    (ast.Pow, "**", "pow", _guard_pow, operator.pow, operator.ipow),
):
    _RUNTIME_HELPERS[f"__sandbox_{_name}__"] = _guarded(_guard, _binary)
    _RUNTIME_HELPERS[f"__sandbox_i{_name}__"] = _guarded(_guard, _inplace)
    _OPERATORS[_op] = (_symbol, _name, _guard)
del _op, _symbol, _name, _guard, _binary, _inplace
# Sub and FloorDiv cannot amplify, so plain BinOps keep them fast; AugAssign always
# goes through a helper because it is rewritten into a plain assignment.
_WRAPPED_BINOPS: Final = frozenset({ast.Add, ast.Mult, ast.Div, ast.Mod, ast.Pow})


class _IterationBudget:
    """Counts comprehension iterations over one evaluate/execute call."""

    __slots__ = ("remaining",)

    def __init__(self, limit: int) -> None:
        self.remaining = limit

    def iterate(self, iterable: Iterable[Any]) -> Iterator[Any]:
        for item in iterable:
            self.remaining -= 1
            if self.remaining < 0:
                raise UnsafeExpression(f"more than {MAX_ITERATIONS} comprehension iterations")
            yield item


# ------------------------------------------------------------------------ checking

_CONSTRUCTS: Final[dict[type[ast.AST], str]] = {
    ast.Import: "import",
    ast.ImportFrom: "import",
    ast.FunctionDef: "function definition",
    ast.AsyncFunctionDef: "function definition",
    ast.Lambda: "lambda",
    ast.ClassDef: "class definition",
    ast.For: "for loop",
    ast.AsyncFor: "for loop",
    ast.While: "while loop",
    ast.With: "with statement",
    ast.AsyncWith: "with statement",
    ast.Try: "try statement",
    ast.TryStar: "try statement",
    ast.Raise: "raise statement",
    ast.Assert: "assert statement",
    ast.Global: "global statement",
    ast.Nonlocal: "nonlocal statement",
    ast.Delete: "del statement",
    ast.Return: "return statement",
    ast.Break: "break statement",
    ast.Continue: "continue statement",
    ast.Match: "match statement",
    ast.AnnAssign: "annotated assignment",
    ast.Yield: "yield",
    ast.YieldFrom: "yield",
    ast.Await: "await",
    ast.NamedExpr: "assignment expression (:=)",
    ast.JoinedStr: "f-string",
    ast.FormattedValue: "f-string",
    ast.Starred: "starred expression (*)",
    ast.GeneratorExp: "generator expression outside a call argument",
    ast.Attribute: "attribute access",
}


def _construct(node: ast.AST) -> str:
    return _CONSTRUCTS.get(type(node), f"{type(node).__name__} node")


class _Checker(ast.NodeVisitor):
    """Walks a parsed tree and records every construct outside the allowlist.

    Every allowed node type has a ``visit_*`` method that visits exactly its
    expression children; anything else lands in :meth:`generic_visit` and is refused
    without being descended into.
    """

    def __init__(self) -> None:
        self.problems: list[tuple[int, int, str]] = []

    def refuse(self, node: ast.AST, reason: str) -> None:
        line = getattr(node, "lineno", 1)
        column = getattr(node, "col_offset", 0)
        if isinstance(node, ast.Attribute) and node.end_lineno is not None:
            # Point at the attribute name, not at the start of `value.attr`.
            line = node.end_lineno
            column = (node.end_col_offset or 0) - len(node.attr)
        self.problems.append((line, column, reason))

    def generic_visit(self, node: ast.AST) -> None:
        self.refuse(node, f"{_construct(node)} is not allowed")

    def visit_all(self, nodes: Iterable[ast.AST | None]) -> None:
        for node in nodes:
            if node is not None:
                self.visit(node)

    # names --------------------------------------------------------------------------

    def check_name(self, node: ast.Name, binding: bool) -> None:
        if node.id.startswith("_"):
            self.refuse(
                node,
                f"name '{node.id}' is not allowed (names starting with '_' are reserved)",
            )
        elif node.id in SAFE_FUNCTIONS:
            self.refuse(
                node,
                f"assignment to '{node.id}' is not allowed (it is a function)"
                if binding
                else f"function '{node.id}' may only be called",
            )

    def visit_Name(self, node: ast.Name) -> None:
        self.check_name(node, binding=False)

    def bind(self, target: ast.expr, *, subscript: bool, tuples: bool) -> None:
        """Check an assignment or loop target."""
        if isinstance(target, ast.Name):
            self.check_name(target, binding=True)
        elif subscript and isinstance(target, ast.Subscript):
            if isinstance(target.value, ast.Name):
                self.check_name(target.value, binding=False)
                self.visit(target.slice)
            else:
                self.refuse(target, "assignment target must be a name or name[...]")
        elif tuples and isinstance(target, ast.Tuple):
            for element in target.elts:
                if isinstance(element, ast.Name):
                    self.check_name(element, binding=True)
                else:
                    self.refuse(element, "tuple targets may only contain names")
        else:
            self.refuse(target, f"{_construct(target)} as a target is not allowed")

    # statements ---------------------------------------------------------------------

    def visit_Module(self, node: ast.Module) -> None:
        self.visit_all(node.body)

    def visit_Expression(self, node: ast.Expression) -> None:
        self.visit(node.body)

    def visit_Expr(self, node: ast.Expr) -> None:
        self.visit(node.value)

    def visit_Pass(self, node: ast.Pass) -> None:
        return None

    def visit_Assign(self, node: ast.Assign) -> None:
        for target in node.targets:
            self.bind(target, subscript=True, tuples=True)
        self.visit(node.value)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        self.check_operator(node, node.op, node.value)
        self.bind(node.target, subscript=True, tuples=False)
        self.visit(node.value)

    def visit_If(self, node: ast.If) -> None:
        self.visit(node.test)
        self.visit_all(node.body)
        self.visit_all(node.orelse)

    # expressions --------------------------------------------------------------------

    def visit_Constant(self, node: ast.Constant) -> None:
        value = node.value
        if isinstance(value, bool) or value is None or isinstance(value, str | float):
            return
        if isinstance(value, int):
            if abs(value) > MAX_INT_LITERAL:
                self.refuse(node, "integer literal larger than 10**15 is not allowed")
            return
        self.refuse(node, f"{type(value).__name__} literal is not allowed")

    def check_operator(self, node: ast.AST, op: ast.operator, right: ast.expr) -> None:
        if type(op) not in _OPERATORS:
            self.refuse(node, f"operator {type(op).__name__} is not allowed")
        elif isinstance(op, ast.Pow) and not (
            isinstance(right, ast.Constant) and type(right.value) is int and 0 <= right.value <= MAX_POW_EXPONENT
        ):
            self.refuse(
                node,
                f"'**' is only allowed with an int literal exponent between 0 and {MAX_POW_EXPONENT}",
            )

    def visit_BinOp(self, node: ast.BinOp) -> None:
        self.check_operator(node, node.op, node.right)
        if isinstance(node.op, ast.Mod) and isinstance(node.left, ast.Constant) and isinstance(node.left.value, str):
            self.refuse(node, "string formatting with '%' is not allowed")  # as the run-time guard says
        self.visit(node.left)
        self.visit(node.right)

    def visit_UnaryOp(self, node: ast.UnaryOp) -> None:
        self.visit(node.operand)

    def visit_BoolOp(self, node: ast.BoolOp) -> None:
        self.visit_all(node.values)

    def visit_Compare(self, node: ast.Compare) -> None:
        self.visit(node.left)
        self.visit_all(node.comparators)

    def visit_IfExp(self, node: ast.IfExp) -> None:
        self.visit_all((node.test, node.body, node.orelse))

    def visit_List(self, node: ast.List) -> None:
        self.visit_all(node.elts)

    def visit_Tuple(self, node: ast.Tuple) -> None:
        self.visit_all(node.elts)

    def visit_Set(self, node: ast.Set) -> None:
        self.visit_all(node.elts)

    def visit_Dict(self, node: ast.Dict) -> None:
        for key, value in zip(node.keys, node.values, strict=True):
            if key is None:
                self.refuse(value, "dict unpacking (**) is not allowed")
            else:
                self.visit(key)
            self.visit(value)

    def visit_Subscript(self, node: ast.Subscript) -> None:
        self.visit(node.value)
        self.visit(node.slice)

    def visit_Slice(self, node: ast.Slice) -> None:
        self.visit_all((node.lower, node.upper, node.step))

    def visit_comprehension_parts(self, generators: list[ast.comprehension], *elements: ast.expr) -> None:
        for generator in generators:
            if generator.is_async:
                self.refuse(generator.target, "async comprehension is not allowed")
            self.bind(generator.target, subscript=False, tuples=True)
            self.visit(generator.iter)
            self.visit_all(generator.ifs)
        self.visit_all(elements)

    def visit_ListComp(self, node: ast.ListComp) -> None:
        self.visit_comprehension_parts(node.generators, node.elt)

    def visit_SetComp(self, node: ast.SetComp) -> None:
        self.visit_comprehension_parts(node.generators, node.elt)

    def visit_DictComp(self, node: ast.DictComp) -> None:
        self.visit_comprehension_parts(node.generators, node.key, node.value)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        if node.attr in ALLOWED_METHODS:
            self.refuse(node, f"attribute '{node.attr}' is only allowed as a method call")
        else:
            self.refuse(node, f"attribute '{node.attr}' is not allowed")
        self.visit(node.value)

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        if isinstance(func, ast.Name):
            if func.id not in SAFE_FUNCTIONS:
                self.refuse(func, f"call of '{func.id}' is not allowed")
        elif isinstance(func, ast.Attribute):
            if func.attr not in ALLOWED_METHODS:
                self.refuse(func, f"attribute '{func.attr}' is not allowed")
            self.visit(func.value)
        else:
            callee = ast.unparse(func)
            callee = callee if len(callee) <= 40 else callee[:37] + "..."
            self.refuse(func, f"call of '{callee}' is not allowed")
            self.visit(func)
        for argument in node.args:
            if isinstance(argument, ast.GeneratorExp):
                self.visit_comprehension_parts(argument.generators, argument.elt)
            else:
                self.visit(argument)
        for keyword in node.keywords:
            if keyword.arg is None:
                self.refuse(keyword, "keyword argument unpacking (**) is not allowed")
            elif keyword.arg not in ALLOWED_KEYWORDS:
                self.refuse(keyword, f"keyword argument '{keyword.arg}' is not allowed")
            self.visit(keyword.value)


def _measure(tree: ast.AST, source: str) -> None:
    """Refuse trees that are too big or too deep, without recursing."""
    count = 0
    stack: list[tuple[ast.AST, int]] = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        count += 1
        if count > MAX_NODES:
            raise UnsafeExpression(
                f"expression is too complex (more than {MAX_NODES} syntax nodes)",
                source,
            )
        if depth > MAX_DEPTH:
            raise UnsafeExpression(
                f"expression is nested too deeply (more than {MAX_DEPTH} levels)",
                source,
                getattr(node, "lineno", None),
            )
        for child in ast.iter_child_nodes(node):
            if not isinstance(child, ast.expr_context):
                stack.append((child, depth + 1))


def _assigned_names(body: list[ast.stmt]) -> tuple[str, ...]:
    """Module-level names a checked script may bind (inside any if/else branch)."""
    names: dict[str, None] = {}
    for statement in body:
        targets: list[ast.expr] = []
        if isinstance(statement, ast.Assign):
            targets = statement.targets
        elif isinstance(statement, ast.AugAssign):
            targets = [statement.target]
        elif isinstance(statement, ast.If):
            names.update(dict.fromkeys(_assigned_names(statement.body)))
            names.update(dict.fromkeys(_assigned_names(statement.orelse)))
        for target in targets:
            elements = target.elts if isinstance(target, ast.Tuple) else [target]
            names.update((element.id, None) for element in elements if isinstance(element, ast.Name))
    return tuple(names)


# ---------------------------------------------------------------------- rewriting


def _call(name: str, args: list[ast.expr], like: ast.AST) -> ast.Call:
    node = ast.Call(func=ast.Name(id=name, ctx=ast.Load()), args=args, keywords=[])
    return ast.copy_location(node, like)


class _Rewriter(ast.NodeTransformer):
    """Turns a *checked* tree into the form that is compiled.

    * float literal ``0.30`` -> ``__sandbox_decimal__("0.30")`` (from the source text);
    * ``a + b`` (and ``* / % **``) -> ``__sandbox_add__(a, b)`` (guarded helpers);
    * ``t op= v`` -> ``t = __sandbox_iop__(t, v)`` (in-place semantics kept);
    * comprehension iterables -> ``__sandbox_iter__(iterable)`` (iteration budget).

    The injected names start with ``_``, which user code can never reference.
    """

    def __init__(self, source: str) -> None:
        self.source = source

    def visit_Constant(self, node: ast.Constant) -> ast.expr:
        if type(node.value) is not float:
            return node
        text = ast.get_source_segment(self.source, node) or repr(node.value)
        return _call(_DECIMAL, [ast.copy_location(ast.Constant(text), node)], node)

    def visit_BinOp(self, node: ast.BinOp) -> ast.expr:
        self.generic_visit(node)
        if type(node.op) not in _WRAPPED_BINOPS:
            return node
        name = _OPERATORS[type(node.op)][1]
        return _call(f"__sandbox_{name}__", [node.left, node.right], node)

    def visit_AugAssign(self, node: ast.AugAssign) -> ast.Assign:
        self.generic_visit(node)
        current = copy.deepcopy(node.target)
        assert isinstance(current, ast.Name | ast.Subscript)  # guaranteed by _Checker
        current.ctx = ast.Load()
        name = _OPERATORS[type(node.op)][1]
        value = _call(f"__sandbox_i{name}__", [current, node.value], node)
        return ast.copy_location(ast.Assign(targets=[node.target], value=value), node)

    def visit_comprehension(self, node: ast.comprehension) -> ast.comprehension:
        self.generic_visit(node)
        node.iter = _call(_ITER, [node.iter], node.iter)
        return node


# ---------------------------------------------------------------------- compiling


@dataclass(frozen=True, slots=True)
class _Program:
    code: CodeType
    assigned: tuple[str, ...]


def _normalized(source: str, mode: Mode) -> str:
    """Surrounding whitespace from XML text nodes is harmless: strip an expression, dedent
    a script (line numbers are unchanged)."""
    return source.strip() if mode == "eval" else textwrap.dedent(source)


@functools.lru_cache(maxsize=4096)
def _compile(source: str, mode: Mode) -> _Program:
    """Check, rewrite and compile ``source``; cached per (source, mode).

    Refusals raise :class:`UnsafeExpression` and are not cached (lru_cache does not
    cache exceptions), which is fine: refused text is rare and still cheap to check.
    """
    if not isinstance(source, str):
        raise UnsafeExpression(f"expression must be text, not {type(source).__name__}")
    if mode not in ("eval", "exec"):
        raise ValueError(f"mode must be 'eval' or 'exec', not {mode!r}")
    if len(source) > MAX_SOURCE_LENGTH:
        raise UnsafeExpression(
            f"expression is too long ({len(source)} characters, at most {MAX_SOURCE_LENGTH})",
            source,
        )
    text = _normalized(source, mode)
    try:
        tree = ast.parse(text, filename=_FILENAME, mode=mode)
    except SyntaxError as exc:
        raise UnsafeExpression(f"syntax error: {exc.msg}", source, exc.lineno) from exc
    except ValueError as exc:  # e.g. NUL characters
        raise UnsafeExpression(f"syntax error: {exc}", source) from exc
    except (MemoryError, RecursionError) as exc:
        raise UnsafeExpression("expression is nested too deeply", source) from exc
    _measure(tree, source)
    checker = _Checker()
    checker.visit(tree)
    if checker.problems:
        line, _, reason = min(checker.problems)
        raise UnsafeExpression(reason, source, line)
    assigned = _assigned_names(tree.body) if isinstance(tree, ast.Module) else ()
    tree = ast.fix_missing_locations(_Rewriter(text).visit(tree))
    return _Program(compile(tree, _FILENAME, mode), assigned)


# What a constant sub-expression may raise when run: it would raise the same every time.
_ALWAYS_FAILS = (ArithmeticError, TypeError, ValueError, LookupError, AttributeError)


_DECIMAL_SIGNALS: Final = {
    "DivisionByZero": "division by zero",
    "DivisionUndefined": "0 / 0",
    "InvalidOperation": "invalid decimal operation",
    "Overflow": "number too large",
}


def _textual_args(exc: BaseException) -> None:
    """Give an error a text message where it has another first argument (decimal's signals
    carry a list of classes, `KeyError(1)` an int): SpiffWorkflow adds `args[0]` to a str
    when it wraps a script's error, and a TypeError there became a 500."""
    if exc.args and not isinstance(exc.args[0], str):
        first = exc.args[0]
        if isinstance(first, list) and all(isinstance(c, type) for c in first):
            text = _DECIMAL_SIGNALS.get(type(exc).__name__, type(exc).__name__)
        else:
            text = repr(first) if isinstance(exc, KeyError) else str(first)
        exc.args = (text, *exc.args[1:])


def error_text(exc: BaseException) -> str:
    """An evaluation error as text for people: its class and message (decimal's signals
    carry only a list of their classes as message, e.g. `[<class 'decimal.DivisionByZero'>]`)."""
    if isinstance(exc, UnsafeExpression):
        return str(exc)
    detail = str(exc)
    if not detail or detail.startswith("[<class"):
        return type(exc).__name__
    return f"{type(exc).__name__}: {detail}"


MAX_FOLDED_LENGTH: Final = 10_000
"""Longest text or container deployment builds while folding constants; a longer value is
not computed ("cannot tell", never a refusal), so checking stays cheap."""

_UNKNOWN: Final = object()
NOT_CONSTANT: Final = _UNKNOWN  # what `constant_value` answers for a part folding leaves alone
_UNARY: Final[dict[type[ast.unaryop], Callable[[Any], Any]]] = {
    ast.USub: operator.neg,
    ast.UAdd: operator.pos,
    ast.Not: operator.not_,
    ast.Invert: operator.invert,
}


class _Folder:
    """Values of the parts of an expression that read no data, computed bottom-up from
    literals with the run-time guards: displays, unary and binary operators, subscripts.
    Calls, comparisons, names and comprehensions are not computed (`_UNKNOWN`), so folding
    costs at most a few operations on values of `MAX_FOLDED_LENGTH` per node. A guard's
    refusal or an error is raised as :class:`UnsafeExpression` naming the part."""

    def __init__(self, text: str, source: str) -> None:
        self.text, self.source = text, source
        self.known: dict[int, Any] = {}

    def value(self, node: ast.AST) -> Any:
        found = self.known.get(id(node), None)
        if found is None and id(node) not in self.known:
            found = self.known[id(node)] = self._value(node)
        return found

    def _value(self, node: ast.AST) -> Any:
        if isinstance(node, ast.Constant):
            if type(node.value) is float:  # as the rewriter reads it: exact, from the text
                return Decimal(ast.get_source_segment(self.text, node) or repr(node.value))
            return node.value
        if isinstance(node, ast.Tuple | ast.List | ast.Set):
            parts = [self.value(element) for element in node.elts]
            if any(part is _UNKNOWN for part in parts):
                return _UNKNOWN
            kind = {ast.Tuple: tuple, ast.List: list, ast.Set: set}[type(node)]
            return self._run(node, kind, parts)
        if isinstance(node, ast.Dict):
            if any(key is None for key in node.keys):
                return _UNKNOWN
            keys = [self.value(key) for key in node.keys]
            values = [self.value(item) for item in node.values]
            if any(part is _UNKNOWN for part in keys + values):
                return _UNKNOWN
            return self._run(node, lambda pairs: dict(pairs), list(zip(keys, values, strict=True)))
        if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
            operand = self.value(node.operand)
            return _UNKNOWN if operand is _UNKNOWN else self._run(node, _UNARY[type(node.op)], operand)
        if isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
            left, right = self.value(node.left), self.value(node.right)
            if left is _UNKNOWN or right is _UNKNOWN or _too_long_to_fold(node.op, left, right):
                return _UNKNOWN
            helper = _RUNTIME_HELPERS[f"__sandbox_{_OPERATORS[type(node.op)][1]}__"]
            return self._run(node, helper, left, right)
        if isinstance(node, ast.Subscript):
            container, index = self.value(node.value), self.value(node.slice)
            if container is _UNKNOWN or index is _UNKNOWN:
                return _UNKNOWN
            return self._run(node, operator.getitem, container, index)
        if isinstance(node, ast.Slice):
            bounds = [self.value(part) if part is not None else None for part in (node.lower, node.upper, node.step)]
            return _UNKNOWN if any(b is _UNKNOWN for b in bounds) else slice(*bounds)
        return _UNKNOWN

    def _run(self, node: ast.AST, function: Callable[..., Any], *arguments: Any) -> Any:
        try:
            result = function(*arguments)
        except UnsafeExpression as exc:
            raise UnsafeExpression(exc.reason, self.source, getattr(node, "lineno", None)) from None
        except _ALWAYS_FAILS as exc:
            segment = ast.get_source_segment(self.text, node) or ast.unparse(node)
            raise UnsafeExpression(
                f"`{segment}` always fails: {error_text(exc)}", self.source, getattr(node, "lineno", None)
            ) from None
        if isinstance(result, str | bytes | list | tuple | dict | set) and len(result) > MAX_FOLDED_LENGTH:
            return _UNKNOWN
        return result


def _too_long_to_fold(op: ast.operator, left: Any, right: Any) -> bool:
    """A repetition within the run-time limit but longer than folding builds: not computed.
    (Beyond the run-time limit the guard refuses it without building anything.)"""
    if not isinstance(op, ast.Mult):
        return False
    for sequence, count in ((left, right), (right, left)):
        if isinstance(sequence, str | bytes | list | tuple) and isinstance(count, int):
            return MAX_FOLDED_LENGTH < len(sequence) * count <= MAX_SEQUENCE_LENGTH
    return False


def _unconditional(node: ast.AST) -> Iterator[ast.AST]:
    """The children of a node that run whenever the node runs: not the branches of `x if c
    else y`, `a and b`, `a < b < c` or `if`, nor a comprehension's element and conditions
    (its first iterable does run). A deliberate `1 / 0` on a branch is the analyst's way to
    stop an instance, and a branch may never be taken."""
    if isinstance(node, ast.IfExp | ast.If):
        yield node.test
    elif isinstance(node, ast.BoolOp):
        yield node.values[0]
    elif isinstance(node, ast.Compare):
        yield node.left
        yield node.comparators[0]
    elif isinstance(node, ast.ListComp | ast.SetComp | ast.DictComp | ast.GeneratorExp):
        yield node.generators[0].iter
    else:
        yield from ast.iter_child_nodes(node)


def _fold_constants(tree: ast.AST, text: str, source: str) -> None:
    """Compute, at check time (so at deployment), every part of the text that reads no data
    and runs whenever the text runs, under the run-time guards: `"x" * 10 ** 9`,
    `[0] * 10 ** 9`, `1 / 0` or `{"a": 1}["b"]` would fail on every run, so a diagram
    holding one is refused before it is stored. The tree is not changed."""
    folder = _Folder(text, source)
    pending: list[ast.AST] = [tree]
    while pending:
        node = pending.pop()
        if isinstance(node, ast.expr | ast.Slice) and folder.value(node) is not _UNKNOWN:
            continue  # computed, with everything under it
        pending.extend(_unconditional(node))


def _globals(names: Mapping[str, Any]) -> dict[str, Any]:
    """Globals for one run: the caller's names, then (winning) the safe functions,
    the internal helpers, a fresh iteration budget and empty builtins.

    Data names go into the globals because comprehensions are nested scopes that only
    see globals.  Names starting with ``_`` are dropped: code cannot refer to them and
    they must not replace the helpers.
    """
    scope = {key: value for key, value in names.items() if isinstance(key, str) and not key.startswith("_")}
    scope.update(SAFE_FUNCTIONS)
    scope.update(_RUNTIME_HELPERS)
    scope[_DECIMAL] = Decimal
    scope[_ITER] = _IterationBudget(MAX_ITERATIONS).iterate
    scope["__builtins__"] = {}
    return scope


def _with_source(exc: UnsafeExpression, source: str) -> None:
    """Run-time refusals are raised by helpers that do not know the source."""
    if exc.expression is None:
        exc.expression = source


# ---------------------------------------------------------------------- public API


def check(source: str, mode: Mode) -> None:
    """Raise :class:`UnsafeExpression` unless ``source`` is allowed in ``mode``.

    ``mode`` is ``"eval"`` for one expression (conditions, DMN cells, timers...) and
    ``"exec"`` for a script.  Syntax errors are refused the same way, with a reason
    starting ``"syntax error"``.  The compiled result is cached, so checking at
    deployment also warms the cache for run time.

    Then the parts built from literals alone that run whenever the text runs
    (``"x" * 10 ** 9``, ``1 / 0``, ``{"a": 1}["b"]``) are computed under the run-time
    guards, and one that would fail on every run is refused here rather than when an
    instance reaches it (see :class:`_Folder`: calls, comparisons, branches and long values
    are left alone, so the check stays cheap).
    """
    _compile(source, mode)
    text = _normalized(source, mode)
    _fold_constants(ast.parse(text, filename=_FILENAME, mode=mode), text, source)


def constant_value(source: str) -> Any:
    """The value of an expression built from literals only (a DMN output cell such as
    ``"lowest"``, ``0.10`` or ``-1``), or :data:`NOT_CONSTANT` (it reads data, calls a
    function, compares, or is too long to compute here); deployment checks such values
    against the column's declared type. ``source`` must have passed :func:`check`."""
    text = _normalized(source, "eval")
    tree = ast.parse(text, filename=_FILENAME, mode="eval")
    return _Folder(text, source).value(tree.body)


def evaluate(source: str, names: Mapping[str, Any]) -> Any:
    """Check ``source`` as an expression and return its value over ``names``.

    ``names`` is not modified.  Names that collide with :data:`SAFE_FUNCTIONS` are
    hidden by the function.  Ordinary errors (``NameError``, ``TypeError``,
    ``ZeroDivisionError``...) propagate unchanged; refusals and resource limits raise
    :class:`UnsafeExpression`.
    """
    program = _compile(source, "eval")
    counting = _BUILT.set([0])
    try:
        return eval(program.code, _globals(names))  # noqa: S307 - checked and rewritten
    except UnsafeExpression as exc:
        _with_source(exc, source)
        raise
    finally:
        _BUILT.reset(counting)


def execute(source: str, names: dict[str, Any]) -> None:
    """Check ``source`` as a script, run it over ``names`` and write the module-level
    variables it assigned back into ``names``.

    Bindings are written back only if the whole script succeeds (in-place changes
    such as ``d["k"] = 1`` act on the shared object immediately, as in Python).
    """
    program = _compile(source, "exec")
    scope = _globals(names)
    counting = _BUILT.set([0])
    try:
        exec(program.code, scope)  # noqa: S102 - checked and rewritten
    except UnsafeExpression as exc:
        _with_source(exc, source)
        raise
    finally:
        _BUILT.reset(counting)
    for name in program.assigned:
        if name in scope:
            names[name] = scope[name]


class SandboxEnvironment(BasePythonScriptEngineEnvironment):
    """SpiffWorkflow script environment that runs everything through this module.

    Use as ``PythonScriptEngine(environment=SandboxEnvironment())``.  Semantics follow
    SpiffWorkflow's ``TaskDataEnvironment``: ``context`` is the task data; an
    expression sees the task data and the ``external_context`` (data objects, DMN's
    ``dmninputexpr``), the task data winning on a clash; a script's assignments land
    in the task data while external names are visible but never written back.  No
    environment globals can be added (extra functions would bypass the allowlist), and
    a clash between task data and a safe function is not an error: the function wins.
    The environment holds no state, so one instance may be shared between threads.
    """

    def __init__(self) -> None:
        super().__init__(environment_globals={})

    def evaluate(
        self,
        expression: str,
        context: dict[str, Any],
        external_context: Mapping[str, Any] | None = None,
    ) -> Any:
        """Value of ``expression`` over the task data (and external names)."""
        names = {**external_context, **context} if external_context else context
        try:
            return evaluate(expression, names)
        except Exception as exc:
            _textual_args(exc)
            raise

    def execute(
        self,
        script: str,
        context: dict[str, Any],
        external_context: Mapping[str, Any] | None = None,
    ) -> bool:
        """Run ``script`` and store its assignments in ``context``.

        Returns True, which SpiffWorkflow's script task needs to complete.
        """
        external = external_context or {}
        scope = {**external, **context}
        try:
            execute(script, scope)
        except Exception as exc:
            _textual_args(exc)
            raise
        for key, value in scope.items():
            if key in context or key not in external:
                context[key] = value
        return True

    def call_service(self, context: dict[str, Any], **kwargs: Any) -> Any:
        """Service tasks are dispatched by the application, never by this sandbox."""
        raise NotImplementedError(
            "SandboxEnvironment does not call services; service tasks are handled "
            "by the application's service-task dispatcher"
        )

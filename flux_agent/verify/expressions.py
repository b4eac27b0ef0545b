"""A restricted parser that turns untrusted sympy-style text into sympy objects.

Model output and template `check` fields are data, never code: this module never
calls `eval`, `exec`, `sympify` or `parse_expr` on the text. It parses the text
with Python's `ast` (which only builds a tree), walks the tree with a whitelist
of node types, operators and functions, and builds the sympy objects itself.
Size guards stop the obvious bombs (`9**9**9`, `factorial(10**6)`); the time and
memory limits of the worker process in `sandbox.py` stop the rest.

Accepted: numbers, names (symbols), `+ - * / // % **` (and `^` as power),
comparisons (`=`/`==` become equations), lists and tuples, and calls to the
functions in `FUNCTIONS`, positional arguments only.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable
from typing import Any

import sympy

MAX_LENGTH = 600
MAX_NODES = 300
MAX_INTEGER_EXPONENT = 5_000
MAX_FACTORIAL_ARGUMENT = 3_000
MAX_NAME_LENGTH = 12


class ExpressionError(ValueError):
    """The text is not an expression this parser accepts, or it cannot be evaluated."""


def _sum(items: Any) -> Any:
    if not isinstance(items, list | tuple | sympy.FiniteSet):
        raise ExpressionError("sum() takes a list")
    return sympy.Add(*items)


def _length(items: Any) -> Any:
    if isinstance(items, dict):
        return sympy.Integer(len(items))
    if not isinstance(items, list | tuple | sympy.FiniteSet):
        raise ExpressionError("len() takes a list")
    return sympy.Integer(len(items))


def _factorial(n: Any) -> Any:
    if n.is_number and abs(n) > MAX_FACTORIAL_ARGUMENT:
        raise ExpressionError(f"factorial argument above {MAX_FACTORIAL_ARGUMENT}")
    return sympy.factorial(n)


def _binomial(n: Any, k: Any) -> Any:
    if n.is_number and abs(n) > 10 * MAX_FACTORIAL_ARGUMENT:
        raise ExpressionError("binomial argument too large")
    return sympy.binomial(n, k)


def _summation(term: Any, limits: Any) -> Any:
    if not (isinstance(limits, tuple | list) and len(limits) == 3):
        raise ExpressionError("summation(term, (k, start, end)) needs a 3-tuple")
    return sympy.summation(term, tuple(limits))


def _product(term: Any, limits: Any) -> Any:
    if not (isinstance(limits, tuple | list) and len(limits) == 3):
        raise ExpressionError("product(term, (k, start, end)) needs a 3-tuple")
    return sympy.product(term, tuple(limits))


def _solve(*args: Any) -> Any:
    if not args:
        raise ExpressionError("solve() needs an equation")
    equation, *unknowns = args
    if isinstance(equation, list | tuple):
        return sympy.solve(list(equation), *unknowns, dict=False)
    return sympy.solve(equation, *unknowns)


FUNCTIONS: dict[str, Callable[..., Any]] = {
    # arithmetic and number theory
    "sqrt": sympy.sqrt,
    "cbrt": sympy.cbrt,
    "root": sympy.root,
    "Rational": sympy.Rational,
    "Abs": sympy.Abs,
    "abs": sympy.Abs,
    "floor": sympy.floor,
    "ceiling": sympy.ceiling,
    "ceil": sympy.ceiling,
    "Mod": sympy.Mod,
    "mod": sympy.Mod,
    "gcd": sympy.gcd,
    "lcm": sympy.lcm,
    "factorial": _factorial,
    "binomial": _binomial,
    "comb": _binomial,
    "ff": sympy.ff,
    "isprime": sympy.isprime,
    "prime": sympy.prime,
    "primefactors": sympy.primefactors,
    "divisors": sympy.divisors,
    "divisor_count": sympy.divisor_count,
    "divisor_sigma": sympy.divisor_sigma,
    "totient": sympy.totient,
    "mod_inverse": sympy.mod_inverse,
    "fibonacci": sympy.fibonacci,
    "Min": sympy.Min,
    "Max": sympy.Max,
    "min": sympy.Min,
    "max": sympy.Max,
    "sum": _sum,
    "len": _length,
    # algebra and calculus
    "solve": _solve,
    "simplify": sympy.simplify,
    "expand": sympy.expand,
    "factor": sympy.factor,
    "nsimplify": sympy.nsimplify,
    "summation": _summation,
    "product": _product,
    "diff": sympy.diff,
    "integrate": sympy.integrate,
    "limit": sympy.limit,
    "Eq": sympy.Eq,
    "re": sympy.re,
    "im": sympy.im,
    "conjugate": sympy.conjugate,
    "arg": sympy.arg,
    # elementary functions
    "exp": sympy.exp,
    "log": sympy.log,
    "ln": sympy.log,
    "sin": sympy.sin,
    "cos": sympy.cos,
    "tan": sympy.tan,
    "cot": sympy.cot,
    "sec": sympy.sec,
    "csc": sympy.csc,
    "asin": sympy.asin,
    "acos": sympy.acos,
    "atan": sympy.atan,
}

CONSTANTS: dict[str, Any] = {
    "pi": sympy.pi,
    "E": sympy.E,
    "I": sympy.I,
    "oo": sympy.oo,
    "True": sympy.true,
    "False": sympy.false,
}

_BINARY: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: lambda a, b: a + b,
    ast.Sub: lambda a, b: a - b,
    ast.Mult: lambda a, b: a * b,
    ast.Div: lambda a, b: a / b,
    ast.FloorDiv: lambda a, b: sympy.floor(a / b),
    ast.Mod: lambda a, b: sympy.Mod(a, b),
    ast.Pow: lambda a, b: _power(a, b),
}

_COMPARE: dict[type, Callable[[Any, Any], Any]] = {
    ast.Eq: sympy.Eq,
    ast.NotEq: sympy.Ne,
    ast.Lt: sympy.Lt,
    ast.LtE: sympy.Le,
    ast.Gt: sympy.Gt,
    ast.GtE: sympy.Ge,
}


def _power(base: Any, exponent: Any) -> Any:
    numeric = getattr(exponent, "is_number", False) and getattr(base, "is_number", False)
    trivial_base = numeric and (base == 0 or abs(base) == 1)
    if numeric and exponent.is_real and abs(exponent) > MAX_INTEGER_EXPONENT and not trivial_base:
        raise ExpressionError(f"exponent above {MAX_INTEGER_EXPONENT}")
    return sympy.Pow(base, exponent)


def normalise_text(text: str) -> str:
    """Rewrite common informal forms into Python syntax (no evaluation happens here)."""
    text = text.strip().replace("^", "**").replace("×", "*").replace("÷", "/")
    text = text.replace("−", "-").replace("·", "*")
    # A lone '=' is an equation, not an assignment.
    text = re.sub(r"(?<![<>=!])=(?!=)", "==", text)
    # Implicit multiplication: '5x' -> '5*x', '2(' -> '2*(', ')(' -> ')*('.
    text = re.sub(r"(?<![A-Za-z_\d.])(\d+(?:\.\d+)?)\s*([A-Za-z(])", r"\1*\2", text)
    text = re.sub(r"\)\s*\(", ")*(", text)
    return text


def parse_expression(text: str) -> Any:
    """Parse restricted sympy-style text into a sympy object (or a list or tuple of them).

    Raises:
        ExpressionError: for anything outside the whitelist or beyond the size guards.
    """
    if not isinstance(text, str) or not text.strip():
        raise ExpressionError("empty expression")
    if len(text) > MAX_LENGTH:
        raise ExpressionError(f"expression longer than {MAX_LENGTH} characters")
    source = normalise_text(text)
    try:
        tree = ast.parse(source, mode="eval")
    except SyntaxError as exc:
        raise ExpressionError(f"not a valid expression: {exc.msg}") from None
    if sum(1 for _ in ast.walk(tree)) > MAX_NODES:
        raise ExpressionError(f"expression has more than {MAX_NODES} parts")
    return _build(tree.body)


def _build(node: ast.AST) -> Any:
    if isinstance(node, ast.Constant):
        return _constant(node.value)
    if isinstance(node, ast.Name):
        return _name(node.id)
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        return _BINARY[type(node.op)](_build(node.left), _build(node.right))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        operand = _build(node.operand)
        return -operand if isinstance(node.op, ast.USub) else operand
    if isinstance(node, ast.Compare) and len(node.ops) == 1 and type(node.ops[0]) in _COMPARE:
        left, right = _build(node.left), _build(node.comparators[0])
        return _COMPARE[type(node.ops[0])](left, right)
    if isinstance(node, ast.Tuple):
        return tuple(_build(item) for item in node.elts)
    if isinstance(node, ast.List):
        return [_build(item) for item in node.elts]
    if isinstance(node, ast.Call):
        return _call(node)
    raise ExpressionError(f"'{type(node).__name__}' is not allowed in an expression")


def _constant(value: object) -> Any:
    if isinstance(value, bool):
        return sympy.true if value else sympy.false
    if isinstance(value, int):
        return sympy.Integer(value)
    if isinstance(value, float):
        # Keep decimals exact: 0.25 means 1/4, not a binary float.
        return sympy.Rational(repr(value))
    raise ExpressionError(f"constant {value!r} is not a number")


def _name(name: str) -> Any:
    if name in CONSTANTS:
        return CONSTANTS[name]
    if name in FUNCTIONS:
        raise ExpressionError(f"'{name}' is a function; call it with arguments")
    if name.startswith("_") or len(name) > MAX_NAME_LENGTH:
        raise ExpressionError(f"name {name!r} is not allowed")
    return sympy.Symbol(name)


def _call(node: ast.Call) -> Any:
    if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
        shown = node.func.id if isinstance(node.func, ast.Name) else type(node.func).__name__
        raise ExpressionError(f"function {shown!r} is not allowed")
    if node.keywords:
        raise ExpressionError("keyword arguments are not allowed")
    args = [_build(arg) for arg in node.args]
    try:
        return FUNCTIONS[node.func.id](*args)
    except ExpressionError:
        raise
    except (TypeError, ValueError, ArithmeticError, NotImplementedError, AttributeError) as exc:
        raise ExpressionError(f"{node.func.id}(): {exc}") from None


def to_answer_latex(value: Any) -> str:
    """Render an evaluated value as LaTeX an answer checker understands.

    Lists, tuples and sets of solutions become a comma-separated list; a solve()
    result of dicts becomes its values.
    """
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, list | tuple | set | sympy.FiniteSet):
        items = list(value)
        if len(items) == 1:
            return to_answer_latex(items[0])
        return ", ".join(to_answer_latex(item) for item in items)
    if isinstance(value, bool):
        return "\\text{True}" if value else "\\text{False}"
    return sympy.latex(value)

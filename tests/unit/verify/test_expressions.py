"""The restricted expression parser: what it accepts, what it refuses; it never runs code."""

from __future__ import annotations

import pytest
import sympy

from flux_agent.verify.expressions import ExpressionError, parse_expression, to_answer_latex


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("binomial(8, 3) - binomial(5, 3)", 46),
        ("2^10", 1024),
        ("3x", sympy.Symbol("x") * 3),
        ("0.25 * 4", 1),
        ("Rational(3, 4) + 1/4", 1),
        ("summation(k**2, (k, 1, 10))", 385),
        ("len(divisors(360))", 24),
        ("Mod(7**100, 10)", 1),
        ("gcd(84, 270)", 6),
        ("sqrt(8)", 2 * sympy.sqrt(2)),
        ("sum([1, 2, 3])", 6),
        ("17 // 5", 3),
        ("2(3 + 4)", 14),
    ],
)
def test_accepts_and_computes_exactly(text, expected):
    assert sympy.simplify(parse_expression(text) - expected) == 0


def test_equations_become_solvable():
    assert parse_expression("solve(x**2 - 5x + 6 = 0, x)") == [2, 3]


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("__import__('os').system('true')", "not allowed"),
        ("().__class__", "not allowed"),
        ("open('/etc/passwd')", "not allowed"),
        ("lambda: 1", "not allowed"),
        ("[x for x in range(9)]", "not allowed"),
        ("'abc'", "not a number"),
        ("9**9**9", "exponent"),
        ("factorial(10**6)", "factorial"),
        ("sqrt", "function"),
        ("_secret + 1", "not allowed"),
        ("", "empty"),
        ("1 +", "not a valid"),
        ("x" * 700, "longer"),
        ("+".join(["1"] * 200), "parts"),
    ],
)
def test_refuses_anything_outside_the_whitelist(text, reason):
    with pytest.raises(ExpressionError, match=reason):
        parse_expression(text)


def test_answer_latex_for_lists_and_fractions():
    assert to_answer_latex([sympy.Integer(2), sympy.Integer(3)]) == "2, 3"
    assert to_answer_latex([sympy.Rational(1, 2)]) == "\\frac{1}{2}"
    assert to_answer_latex({sympy.Symbol("x"): sympy.Integer(4)}) == "4"


def test_a_lone_equals_sign_is_an_equation_not_an_assignment():
    assert parse_expression("x = 3") == sympy.Eq(sympy.Symbol("x"), 3)

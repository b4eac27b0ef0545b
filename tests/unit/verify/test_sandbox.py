"""The math worker: evaluates in another process, bounds time, survives crashes, checks answers."""

from __future__ import annotations

import time

import pytest

from flux_agent.verify import Sandbox, SandboxError, SandboxTimeout


def test_evaluates_in_a_worker(sandbox):
    value = sandbox.evaluate("solve(x**2 - 5*x + 6, x)")
    assert value.text == "[2, 3]" and value.latex == "2, 3"


def test_errors_come_back_as_messages(sandbox):
    with pytest.raises(SandboxError, match="not allowed"):
        sandbox.evaluate("__import__('os')")


def test_a_runaway_computation_is_killed_and_the_next_call_works():
    box = Sandbox(timeout_s=30)
    try:
        box.evaluate("1")  # start the worker outside the deadline being tested
        start = time.perf_counter()
        with pytest.raises(SandboxTimeout):
            box.evaluate("expand((a + b + c + d + 1)**90)", timeout_s=1)
        assert time.perf_counter() - start < 5
        assert box.evaluate("2 + 2").text == "4"
    finally:
        box.close()


@pytest.mark.parametrize(
    ("candidate", "reference", "same"),
    [
        ("\\frac{3}{4}", "0.75", True),
        ("2\\sqrt{2}", "\\sqrt{8}", True),
        ("2, 3", "3, 2", True),
        ("5", "6", False),
        ("9\\pi", "9 \\pi", True),
        ("\\frac{1}{2}", "\\frac{1}{3}", False),
    ],
)
def test_equivalence_uses_math_verify(sandbox, candidate, reference, same):
    assert sandbox.equivalent(candidate, reference) is same

"""Extracting a final answer from free text."""

from __future__ import annotations

import pytest

from flux_agent.verify import extract_answer


@pytest.mark.parametrize(
    ("text", "answer"),
    [
        ("so the total is \\boxed{\\frac{3}{4}}.", "\\frac{3}{4}"),
        ("first \\boxed{1} then \\boxed{\\sqrt{2}}", "\\sqrt{2}"),
        ("\\boxed{\\text{(B)}}", "(B)"),
        ("She pays 12 + 5 = 17 dollars.\n#### 17", "17"),
        ("The answer is 42.", "42"),
        ("Final answer: x = 3", "x = 3"),
        ("He walked 3 miles and then 1,250 more feet", "1250"),
        ("$\\dfrac{1}{2}$", "\\frac{1}{2}"),  # a bare formula is the answer
        ("it is about 3 or 4", "4"),  # no marker: the last number
        ("", None),
        ("no numbers here", None),
    ],
)
def test_extract_answer(text, answer):
    assert extract_answer(text) == answer

"""Shared pieces of the growth tests: a small library, the real embedder, and the
templates a scripted "model" proposes (as the JSON an LLM would write)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from flux_agent.backends.base import GenerationRequest
from flux_agent.growth.extract import Worked
from flux_agent.templates import default_library_path
from flux_agent.templates.embeddings import load_embedder

SMALL_LIBRARY = (
    "algebra/vieta_sum_product.yaml",
    "algebra/discriminant_root_count.yaml",
    "algebra/completing_the_square.yaml",
    "number_theory/count_divisors_from_factorization.yaml",
    "geometry/arc_length_sector_area.yaml",
)
VIETA = "algebra.quadratics.vieta_sum_product"
SOURCE = "math-mini.jsonl"
MODEL = "scripted-test-model"


def copy_small_library(folder: Path) -> Path:
    """Five shipped templates and the tag vocabulary (no `distinct.yaml`)."""
    shipped = default_library_path()
    for name in (*SMALL_LIBRARY, "tags.yaml"):
        target = folder / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(shipped / name, target)
    return folder


@pytest.fixture
def small_library(tmp_path: Path) -> Path:
    return copy_small_library(tmp_path / "library")


@pytest.fixture(scope="session")
def embedder():
    """all-MiniLM-L6-v2, loaded once: near-duplicates and merges need real similarities."""
    return load_embedder(None)


def euclid_template() -> dict[str, Any]:
    """A new technique the small library lacks, with a correct check."""
    return {
        "id": "number_theory.gcd.euclidean_algorithm_gcd",
        "name": "Greatest common divisor by the Euclidean algorithm",
        "domain": "number_theory",
        "tags": ["gcd-lcm", "euclidean-algorithm"],
        "description": "Replace the pair (a, b) by (b, a mod b) until the remainder is zero; "
        "the last non-zero remainder is the greatest common divisor, because every step keeps "
        "the set of common divisors unchanged.",
        "applies_when": [
            "The question asks for the greatest common divisor or highest common factor.",
            "The numbers are too large to factor into primes comfortably.",
        ],
        "steps": [
            "Divide the larger number by the smaller and note the remainder.",
            "Replace the larger number by the smaller, and the smaller by the remainder.",
            "Repeat until the remainder is zero; the last non-zero remainder is the answer.",
        ],
        "pitfalls": ["Stopping at the first remainder instead of continuing until it is zero."],
        "example": {
            "problem": "Find the greatest common divisor of 252 and 105.",
            "solution": "252 = 2*105 + 42, then 105 = 2*42 + 21, then 42 = 2*21 + 0. "
            "The last non-zero remainder is 21.",
            "answer": "21",
        },
        "check": "gcd(252, 105)",
    }


def wrong_check_template() -> dict[str, Any]:
    """A schema-valid template whose `check` (120) is not its example's answer (60)."""
    return {
        "id": "counting_probability.arrangements.multiset_permutations",
        "name": "Arrangements of letters with repeats",
        "domain": "counting_probability",
        "tags": ["permutations", "factorials"],
        "description": "Arrange all n letters as if they were different, then divide by the "
        "factorial of each letter's multiplicity, since swapping equal letters gives the same "
        "word.",
        "applies_when": [
            "The question counts the distinct arrangements of the letters of a word.",
            "Some of the objects being arranged are identical to each other.",
        ],
        "steps": [
            "Count the objects, n, and how many times each distinct object repeats.",
            "Compute n factorial as if every object were different.",
            "Divide by the factorial of every multiplicity.",
        ],
        "pitfalls": ["Dividing only by the largest multiplicity and forgetting the others."],
        "example": {
            "problem": "How many distinct arrangements of the 6 letters of BANANA are there?",
            "solution": "There are 6 letters: A three times, N twice, B once. "
            "6! / (3! * 2!) = 720 / 12 = 60.",
            "answer": "60",
        },
        "check": "factorial(6) / factorial(3)",
    }


NEW_PITFALL = (
    "Rejecting the method because the roots are complex: the relations hold for complex "
    "roots as well."
)


def near_duplicate_template() -> dict[str, Any]:
    """Vieta's technique under another id, with one pitfall the library's template lacks."""
    data = yaml_template(default_library_path() / "algebra/vieta_sum_product.yaml")
    return {
        "id": "algebra.quadratics.root_sum_product_shortcut",
        "name": "Sum and product of the roots read off the coefficients",
        "domain": "algebra",
        "tags": ["quadratics", "vieta"],
        "description": data["description"],
        "applies_when": data["applies_when"],
        "steps": data["steps"],
        "pitfalls": [data["pitfalls"][0], NEW_PITFALL],
        "example": {
            "problem": "The roots of x^2 - 7x + 10 = 0 are r and s. Find r + s.",
            "solution": "Here a = 1, b = -7 and c = 10, so r + s = -b/a = 7.",
            "answer": "7",
        },
        "check": "-(-7)/1",
    }


def yaml_template(path: Path) -> dict[str, Any]:
    import yaml

    return yaml.safe_load(path.read_text(encoding="utf-8"))


def reply(*templates: dict[str, Any]) -> str:
    return json.dumps({"templates": list(templates)})


GARBAGE = "I am sorry, I cannot produce templates for this one."

WORKED = [
    Worked(
        SOURCE,
        "gcd-1",
        "What is the greatest common divisor of 462 and 1071?",
        answer="21",
        solution="1071 = 2*462 + 147, 462 = 3*147 + 21, 147 = 7*21. So gcd = 21. \\boxed{21}",
    ),
    Worked(
        SOURCE,
        "roots-2",
        "What is the sum of the roots of x^2 - 5x + 6 = 0?",
        answer="5",
        solution="By Vieta the sum of the roots is -b/a = 5. \\boxed{5}",
    ),
    Worked(SOURCE, "hard-3", "Evaluate the infinite product of (1 + 1/n^2).", answer="sinh(pi)/pi"),
]
"""Problem 1 yields a good template and one with a wrong check; problem 2 a mergeable
near-duplicate of Vieta; problem 3 only garbage (twice: the reply and the retry)."""


def problem_of(request: GenerationRequest) -> str:
    """The problem a request is about (the first user message names it, retries included)."""
    return next(m["content"] for m in request.messages if m["role"] == "user")


def scripted_model(fail_on: str | None = None) -> Callable[[GenerationRequest], str]:
    """The replies for WORKED; raises a BackendError on the problem containing `fail_on`."""
    from flux_agent.backends.base import BackendError

    def answer(request: GenerationRequest) -> str:
        problem = problem_of(request)
        if fail_on is not None and fail_on in problem:
            raise BackendError("the model server went away")
        if "462 and 1071" in problem:
            return reply(euclid_template(), wrong_check_template())
        if "x^2 - 5x + 6" in problem:
            return reply(near_duplicate_template())
        return GARBAGE

    return answer

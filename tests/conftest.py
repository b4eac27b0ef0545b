"""Shared fixtures: the shipped templates, an in-memory store, a math sandbox."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence

import pytest

from flux_agent.templates import IndexReport, SearchHit, ThoughtTemplate, load_library
from flux_agent.verify import Sandbox


class KeywordStore:
    """A TemplateStore that ranks by word overlap: deterministic and model-free, for unit tests."""

    def __init__(self, templates: Sequence[ThoughtTemplate] = ()) -> None:
        self.templates: dict[str, ThoughtTemplate] = {t.id: t for t in templates}

    def index(self, templates: Sequence[ThoughtTemplate], *, prune: bool = True) -> IndexReport:
        added = tuple(t.id for t in templates if t.id not in self.templates)
        self.templates.update({t.id: t for t in templates})
        return IndexReport(added=added, unchanged=len(templates) - len(added))

    def search(self, query: str, k: int = 5, domain: str | None = None) -> list[SearchHit]:
        words = set(re.findall(r"[a-z]+", query.lower()))
        scored = []
        for template in self.templates.values():
            if domain and template.domain != domain:
                continue
            text = set(re.findall(r"[a-z]+", template.search_text().lower()))
            scored.append(SearchHit(template, len(words & text) / (len(words) or 1)))
        scored.sort(key=lambda hit: (-hit.score, hit.template.id))
        return scored[:k]

    def get(self, template_id: str) -> ThoughtTemplate | None:
        return self.templates.get(template_id)

    def count(self) -> int:
        return len(self.templates)


@pytest.fixture(scope="session")
def library() -> list[ThoughtTemplate]:
    return load_library()


UNIT_TEST_TEMPLATES = (
    "algebra.quadratics.vieta_sum_product",
    "algebra.quadratics.discriminant_root_count",
    "algebra.quadratics.completing_the_square",
    "counting_probability.combinations.restricted_group_selection",
    "number_theory.divisors.count_divisors_from_factorization",
    "geometry.circles.arc_length_sector_area",
)
"""A fixed handful, so unit tests do not change meaning as the library grows."""


@pytest.fixture
def keyword_store(library: list[ThoughtTemplate]) -> KeywordStore:
    return KeywordStore([t for t in library if t.id in UNIT_TEST_TEMPLATES])


@pytest.fixture(scope="session")
def sandbox() -> Iterator[Sandbox]:
    box = Sandbox(timeout_s=10)
    yield box
    box.close()

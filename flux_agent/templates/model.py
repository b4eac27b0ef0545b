"""The `ThoughtTemplate` model: one reusable reasoning technique, schema version 1.

A template is data, written in YAML under `template_library/<domain>/<name>.yaml`.
This module only describes its shape and the rules a single template must obey;
loading a folder and checking the worked example live in `library.py`.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import date
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

SCHEMA_VERSION: Final = 1

DOMAINS = (
    "prealgebra",
    "algebra",
    "intermediate_algebra",
    "number_theory",
    "counting_probability",
    "geometry",
    "precalculus",
    "calculus",
    "arithmetic",
)
"""Domains a template may belong to (the MATH subjects, plus arithmetic word problems)."""

_ID_PART = r"[a-z][a-z0-9_]*"
_ID_RE = re.compile(rf"^{_ID_PART}\.{_ID_PART}\.{_ID_PART}$")
_TAG_RE = re.compile(r"^[a-z][a-z0-9-]*$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True)


class WorkedExample(_Strict):
    """A fresh problem solved by following the template's steps."""

    problem: str = Field(min_length=10)
    solution: str = Field(min_length=20, description="Applies the steps one by one.")
    answer: str = Field(
        min_length=1,
        max_length=80,
        description="The final answer, as a reader would write it (one line).",
    )

    @field_validator("answer")
    @classmethod
    def _one_line(cls, value: str) -> str:
        if "\n" in value:
            raise ValueError("must be one line: only the final answer")
        return value


class Merge(_Strict):
    """A near-duplicate candidate folded into a template: what it added, and where it came from."""

    version: int = Field(ge=2, description="The version of the template this merge produced.")
    date: date
    source: str = Field(min_length=1, description="Source file, 'runs', 'api' or 'review'.")
    record: str | None = Field(default=None, description="The record or run id in the source.")
    model: str | None = None
    prompt_version: str | None = None
    added: dict[str, int] = Field(description="Items added per field, e.g. {'pitfalls': 1}.")


class Provenance(_Strict):
    """Where a template came from, and the merges that extended it since."""

    kind: Literal["authored", "extracted"] = "authored"
    source: str = Field(default="flux-agent maintainers", min_length=1)
    date: date
    model: str | None = Field(default=None, description="The model that wrote it, if extracted.")
    record: str | None = Field(
        default=None, description="The record (dataset id or line) or run id it was extracted from."
    )
    prompt_version: str | None = Field(
        default=None, description="The version of the extraction prompt, if extracted."
    )
    merges: list[Merge] = Field(default_factory=list)


class ThoughtTemplate(_Strict):
    """A named technique: when it applies, how to carry it out, and a checked example."""

    id: str = Field(description="Slug `domain.topic.name`.")
    name: str = Field(min_length=3, max_length=80)
    domain: str
    tags: list[str] = Field(min_length=1, max_length=8)
    description: str = Field(min_length=30)
    applies_when: list[str] = Field(min_length=2, description="Cues that signal the technique.")
    steps: list[str] = Field(min_length=3, description="Ordered, imperative steps.")
    pitfalls: list[str] = Field(min_length=1)
    example: WorkedExample
    check: str = Field(
        min_length=1,
        description="A sympy expression, evaluated safely, that must equal example.answer.",
    )
    provenance: Provenance
    version: int = Field(default=1, ge=1)
    schema_version: Literal[1] = SCHEMA_VERSION

    @field_validator("id")
    @classmethod
    def _id_is_slug(cls, value: str) -> str:
        if not _ID_RE.match(value):
            raise ValueError("must look like 'domain.topic.name' (lowercase, digits, underscores)")
        return value

    @field_validator("domain")
    @classmethod
    def _known_domain(cls, value: str) -> str:
        if value not in DOMAINS:
            raise ValueError(f"unknown domain {value!r}; expected one of {', '.join(DOMAINS)}")
        return value

    @field_validator("tags")
    @classmethod
    def _tags_are_slugs(cls, value: list[str]) -> list[str]:
        bad = [tag for tag in value if not _TAG_RE.match(tag)]
        if bad:
            raise ValueError(f"tags must be lowercase-with-dashes: {bad}")
        if len(set(value)) != len(value):
            raise ValueError("tags must be unique")
        return value

    @field_validator("applies_when", "steps", "pitfalls")
    @classmethod
    def _no_blank_items(cls, value: list[str]) -> list[str]:
        if any(len(item.strip()) < 8 for item in value):
            raise ValueError("every item must be a real sentence (8+ characters)")
        if len({item.strip().lower() for item in value}) < len(value):
            raise ValueError("items must differ (one is repeated)")
        return value

    @field_validator("description")
    @classmethod
    def _whole_sentences(cls, value: str) -> str:
        if not value.rstrip().endswith((".", "!", "?", ")", "$")):
            raise ValueError("must end with a whole sentence (it looks cut off)")
        return value

    @model_validator(mode="after")
    def _id_matches_domain(self) -> ThoughtTemplate:
        if self.id.split(".", 1)[0] != self.domain:
            raise ValueError(f"id {self.id!r} must start with its domain {self.domain!r}")
        return self

    def content_hash(self) -> str:
        """A stable hash of everything that affects retrieval; unchanged hash = no re-embedding."""
        payload = json.dumps(self.model_dump(mode="json"), sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]

    def search_text(self) -> str:
        """The text that is embedded: all fields a problem might resemble, not only the name."""
        return "\n".join(
            [
                self.name,
                self.description,
                "Applies when: " + " ".join(self.applies_when),
                "Tags: " + ", ".join(self.tags),
                "Example: " + self.example.problem,
            ]
        )

    def render(self, with_example: bool = True) -> str:
        """The template as the solver sees it in a prompt."""
        lines = [f"Template {self.id}: {self.name}", self.description, "Steps:"]
        lines += [f"  {i}. {step}" for i, step in enumerate(self.steps, 1)]
        lines.append("Pitfalls: " + " ".join(self.pitfalls))
        if with_example:
            lines += [
                f"Worked example (another problem): {self.example.problem}",
                f"Solution: {self.example.solution}",
                f"Answer: {self.example.answer}",
            ]
        return "\n".join(lines)

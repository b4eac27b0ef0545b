"""Extraction: an LLM reads a solved problem and proposes thought templates as JSON.

The prompt lives in a versioned file (`prompts/extract-v1.md`); its version is recorded
in every template it produced. The reply is constrained by a JSON schema derived from
`ThoughtTemplate` (without provenance and version, with the domains and the library's
tags as enums), then each proposed template is validated on its own, so one broken
candidate does not cost the others. A reply with no valid candidate is answered with
the errors and tried again, `retries` times.
"""

from __future__ import annotations

import datetime as dt
import json
import string
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from flux_agent.agent.prompts import repair_message
from flux_agent.agent.structured import json_text
from flux_agent.backends.base import GenerationRequest, LLMBackend, Message, Usage
from flux_agent.templates.model import DOMAINS, Provenance, ThoughtTemplate

PROMPTS_DIR = Path(__file__).parent / "prompts"
DEFAULT_PROMPT = "extract-v2"
MAX_TEMPLATES = 2
_LIMITS = {"tags": 5, "applies_when": 4, "steps": 6, "pitfalls": 3}
_SECTION = "=== {} ==="
# Bounded parts: with `*` a small model can loop inside the id until the token limit.
_ID_PATTERN = "^(" + "|".join(DOMAINS) + ")[.][a-z][a-z0-9_]{1,30}[.][a-z][a-z0-9_]{1,40}$"
_MIN_ITEM_CHARS = 12
# One expression, written without spaces: no "=", no prose, no chains of working.
_CHECK_PATTERN = "^[-+*/(),.0-9a-zA-Z_]{1,80}$"


@dataclass(frozen=True)
class Worked:
    """A solved problem to learn from: where it came from, and what is known of its solution."""

    source: str  # the file as given, or "runs"
    record: str  # the dataset record id, or the run id
    problem: str
    answer: str | None = None
    solution: str | None = None


@dataclass(frozen=True)
class ExtractionPrompt:
    """The two parts of a versioned extraction prompt, with `$name` placeholders."""

    version: str
    system: string.Template
    user: string.Template

    @classmethod
    def load(cls, version: str = DEFAULT_PROMPT) -> ExtractionPrompt:
        """Read `prompts/<version>.md`.

        Raises:
            ValueError: no such prompt, or the file lacks its sections.
        """
        path = PROMPTS_DIR / f"{version}.md"
        if not path.is_file():
            known = ", ".join(sorted(p.stem for p in PROMPTS_DIR.glob("*.md")))
            raise ValueError(f"no extraction prompt {version!r} (known: {known})")
        text = path.read_text(encoding="utf-8")
        system_mark, user_mark = _SECTION.format("system"), _SECTION.format("user")
        if system_mark not in text or user_mark not in text:
            raise ValueError(f"{path}: needs '{system_mark}' and '{user_mark}' sections")
        system, user = text.split(system_mark, 1)[1].split(user_mark, 1)
        return cls(version, string.Template(system.strip()), string.Template(user.strip()))

    def messages(self, worked: Worked, tags: list[str], sample: ThoughtTemplate) -> list[Message]:
        system = self.system.substitute(
            domains=", ".join(DOMAINS), tags=", ".join(tags), sample=f'"{sample.id}"'
        )
        user = self.user.substitute(
            problem=worked.problem,
            solution=worked.solution or "(no worked solution given: work it out)",
            answer=worked.answer or "(not given)",
        )
        return [{"role": "system", "content": system}, {"role": "user", "content": user}]


@dataclass
class Candidate:
    """One proposed template: the JSON the model wrote, and the template if it is valid."""

    data: Any
    template: ThoughtTemplate | None
    errors: list[str] = field(default_factory=list)


@dataclass
class Extraction:
    """What one solved problem yielded."""

    candidates: list[Candidate]
    raw: list[str]  # every reply, in order
    errors: list[str]  # reply-level problems (no JSON, wrong shape)
    usage: Usage


def draft_schema(tags: list[str]) -> dict[str, Any]:
    """The JSON schema of a reply: {"templates": [template without provenance, ...]}."""
    schema = ThoughtTemplate.model_json_schema()
    definitions = {"WorkedExample": schema["$defs"]["WorkedExample"]}
    properties = {
        name: dict(value)
        for name, value in schema["properties"].items()
        if name not in {"provenance", "version", "schema_version"}
    }
    # Rules the validators enforce are put in the schema too, so constrained decoding
    # cannot break them: the id's shape, sentences of some length. The domain goes
    # first, so the model has chosen it when it writes the id that must start with it.
    properties.pop("domain")
    properties = {"domain": {"type": "string", "enum": list(DOMAINS)}, **properties}
    properties["id"] = {**properties["id"], "pattern": _ID_PATTERN}
    properties["check"] = {**properties["check"], "pattern": _CHECK_PATTERN}
    if tags:
        properties["tags"]["items"] = {"type": "string", "enum": list(tags)}
    for name, limit in _LIMITS.items():
        properties[name]["maxItems"] = limit
        if name != "tags":
            properties[name]["items"] = {"type": "string", "minLength": _MIN_ITEM_CHARS}
    draft = {
        "type": "object",
        "additionalProperties": False,
        "properties": properties,
        "required": [name for name in properties if name in schema["required"]],
    }
    return {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "templates": {
                "type": "array",
                "items": draft,
                "minItems": 1,
                "maxItems": MAX_TEMPLATES,
            }
        },
        "required": ["templates"],
        "$defs": definitions,
    }


def provenance_for(worked: Worked, model: str, prompt_version: str) -> Provenance:
    return Provenance(
        kind="extracted",
        source=worked.source,
        record=worked.record,
        date=dt.date.today(),
        model=model,
        prompt_version=prompt_version,
    )


def parse_reply(text: str, provenance: Provenance) -> tuple[list[Candidate], list[str]]:
    """The candidates in a reply, each validated; or the reason the reply has none."""
    try:
        value = json.loads(json_text(text), strict=False)
    except ValueError as exc:
        return [], [f"the reply is not JSON: {exc}"]
    if not isinstance(value, dict) or not isinstance(value.get("templates"), list):
        return [], ['the reply must be an object {"templates": [...]}']
    candidates = []
    for data in value["templates"][:MAX_TEMPLATES]:
        if not isinstance(data, dict):
            candidates.append(Candidate(data, None, ["a template must be a JSON object"]))
            continue
        drafted = {k: v for k, v in data.items() if k not in {"provenance", "version"}}
        if isinstance(drafted.get("tags"), list):  # a repeated tag says nothing: drop it
            drafted["tags"] = list(dict.fromkeys(drafted["tags"]))
        try:
            template = ThoughtTemplate.model_validate(
                {**drafted, "provenance": provenance.model_dump()}
            )
        except ValidationError as exc:
            errors = [
                f"{'.'.join(str(p) for p in err['loc']) or 'template'}: {err['msg']}"
                for err in exc.errors()
            ]
            candidates.append(Candidate(data, None, errors))
            continue
        candidates.append(Candidate(data, template))
    return candidates, []


async def extract(
    backend: LLMBackend,
    worked: Worked,
    *,
    prompt: ExtractionPrompt,
    tags: list[str],
    sample: ThoughtTemplate,
    model: str,
    max_tokens: int = 1500,
    retries: int = 1,
) -> Extraction:
    """Ask `backend` for templates from one solved problem (greedy, schema-constrained).

    Raises:
        BackendError: the backend failed (not retried here).
    """
    provenance = provenance_for(worked, model, prompt.version)
    conversation = prompt.messages(worked, tags, sample)
    schema = draft_schema(tags)
    result = Extraction(candidates=[], raw=[], errors=[], usage=Usage())
    for _ in range(retries + 1):
        request = GenerationRequest(
            messages=tuple(conversation), max_tokens=max_tokens, temperature=0.0, json_schema=schema
        )
        (completion,) = await backend.generate([request])
        result.usage = result.usage + completion.usage
        result.raw.append(completion.text)
        candidates, errors = parse_reply(completion.text, provenance)
        if completion.finish_reason == "length":
            errors.append("the reply was cut off at the token limit")
        result.candidates, result.errors = candidates, errors
        if any(c.template is not None for c in candidates) or (not candidates and not errors):
            break
        problems = errors + [e for c in candidates for e in c.errors[:4]]
        conversation += [
            {"role": "assistant", "content": completion.text[:3000]},
            repair_message("; ".join(problems[:8])),
        ]
    return result

"""One growth pass: extract candidates from solved problems, gate them, write the good ones.

    grower = Grower(writer, backend, model="qwen2.5-0.5b", work_dir=folder)
    summary = await grower.run(problems, on_problem=print)

Resumable: every reply is logged to `<work_dir>/extractions.jsonl` as it arrives and
every decision to `decisions.jsonl`, so a rerun after a crash (same source, model and
prompt) asks the model only about problems it had not reached, and never decides a
candidate twice. Rejected candidates, with their reasons, go to `rejected.jsonl`.

Modes: the default writes accepted and merged templates into the library; `dry_run`
decides the same way and writes nothing; `review_dir` also writes nothing to the
library, but puts every schema-valid candidate in a folder as YAML, with its verdict,
for a person to edit and `accept`.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flux_agent.backends.base import LLMBackend, Usage
from flux_agent.growth.extract import (
    Candidate,
    Extraction,
    ExtractionPrompt,
    Worked,
    extract,
    parse_reply,
    provenance_for,
)
from flux_agent.storage import JsonlLog
from flux_agent.templates.admission import Rejection, template_yaml
from flux_agent.templates.library import load_tag_vocabulary, parse_template_file
from flux_agent.templates.model import ThoughtTemplate
from flux_agent.templates.writer import Decision, LibraryWriter, Origin

EXTRACTIONS_FILE = "extractions.jsonl"
DECISIONS_FILE = "decisions.jsonl"
REJECTED_FILE = "rejected.jsonl"
ACCEPTED_DIR = "accepted"


@dataclass
class ProblemOutcome:
    """What one solved problem gave: its candidates' fates, and reply-level problems."""

    worked: Worked
    decisions: list[Decision]
    errors: list[str]
    resumed: bool = False
    usage: Usage = field(default_factory=Usage)  # spent now (nothing when replayed)


@dataclass
class GrowSummary:
    """Counts over a pass, for the progress line and the closing table."""

    problems: int = 0
    candidates: int = 0
    added: int = 0
    merged: int = 0
    rejected: int = 0
    failed_replies: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    usage: Usage = field(default_factory=Usage)
    seconds: float = 0.0

    def count(self, outcome: ProblemOutcome) -> None:
        self.problems += 1
        if not outcome.decisions:
            self.failed_replies += 1
            self.reasons["no usable reply" if outcome.errors else "no template proposed"] += 1
        for decision in outcome.decisions:
            self.candidates += 1
            if decision.outcome == "added":
                self.added += 1
            elif decision.outcome == "merged":
                self.merged += 1
            else:
                self.rejected += 1
                self.reasons[reason_kind(decision.rejections)] += 1


def reason_kind(rejections: list[Rejection]) -> str:
    """A short label for counting: the rule that rejected the candidate first."""
    if not rejections:
        return "unknown"
    return rejections[0].rule or rejections[0].field


class Grower:
    """Runs extraction and the gate over solved problems (see the module docstring)."""

    def __init__(
        self,
        writer: LibraryWriter,
        backend: LLMBackend,
        *,
        model: str,
        work_dir: Path,
        prompt: ExtractionPrompt,
        review_dir: Path | None = None,
        max_tokens: int = 1500,
        retries: int = 1,
    ) -> None:
        self.writer = writer
        self.backend = backend
        self.model = model
        self.work_dir = Path(work_dir)
        self.prompt = prompt
        self.review_dir = review_dir
        self.max_tokens = max_tokens
        self.retries = retries
        templates = writer.admission.templates()
        self.tags = _tags(writer)
        self.sample = _sample(templates)
        self.extractions = JsonlLog(self.work_dir / EXTRACTIONS_FILE)
        self.decisions = JsonlLog(self.work_dir / DECISIONS_FILE)
        self.rejected = JsonlLog(self.work_dir / REJECTED_FILE)

    @property
    def writes(self) -> bool:
        return not self.writer.dry_run

    async def run(
        self,
        problems: list[Worked],
        on_problem: Callable[[ProblemOutcome, GrowSummary], None] | None = None,
    ) -> GrowSummary:
        start = time.perf_counter()
        summary = GrowSummary()
        replies = {row["key"]: row for row in self.extractions.read()}
        decided: dict[str, list[dict[str, Any]]] = {}
        if self.writes:
            for row in self.decisions.read():
                decided.setdefault(row["key"], []).append(row)
        for worked in problems:
            key = _key(worked)
            rows = decided.get(key, [])
            if rows and rows[-1].get("last"):
                outcome = self._replayed(worked, rows)
            else:
                outcome = await self._problem(worked, key, replies.get(key), rows)
            summary.count(outcome)
            summary.usage = summary.usage + outcome.usage
            if on_problem is not None:
                on_problem(outcome, summary)
        summary.seconds = time.perf_counter() - start
        return summary

    async def _problem(
        self,
        worked: Worked,
        key: str,
        logged: dict[str, Any] | None,
        done: list[dict[str, Any]],
    ) -> ProblemOutcome:
        """Extract (or re-read the logged reply), then decide each candidate not decided yet
        (`done`: the decisions a killed pass recorded for this problem)."""
        spent = Usage()
        if logged is None:
            extraction = await extract(
                self.backend,
                worked,
                prompt=self.prompt,
                tags=self.tags,
                sample=self.sample,
                model=self.model,
                max_tokens=self.max_tokens,
                retries=self.retries,
            )
            logged = {
                "key": key,
                "prompt_version": self.prompt.version,
                "model": self.model,
                "raw": extraction.raw,
                "usage": vars(extraction.usage),
            }
            self.extractions.append(logged)
            spent = extraction.usage
        else:
            extraction = self._reparse(worked, logged)
        decisions = self._replayed(worked, done).decisions
        candidates = extraction.candidates
        for index, candidate in enumerate(candidates):
            if index < len(done):
                continue
            decision = await asyncio.to_thread(self._decide, worked, candidate)
            decisions.append(decision)
            if decision.outcome == "rejected":
                self._reject(worked, candidate, decision)
            if self.review_dir is not None and candidate.template is not None:
                self._write_review(worked, decision)
            if self.writes:
                self.decisions.append(
                    {
                        "key": key,
                        "index": index,
                        "outcome": decision.outcome,
                        "id": decision.template.id if decision.template else None,
                        "reasons": [vars(r) for r in decision.rejections],
                        "detail": decision.detail,
                        "last": index == len(candidates) - 1,
                    }
                )
        if not candidates:
            self.rejected.append(
                {
                    "source": worked.source,
                    "record": worked.record,
                    "candidate": None,
                    "reasons": extraction.errors or ["the model proposed no template"],
                    "reply": extraction.raw[-1][:4000] if extraction.raw else "",
                }
            )
            if self.writes:
                self.decisions.append(
                    {
                        "key": key,
                        "index": -1,
                        "outcome": "none",
                        "errors": extraction.errors,
                        "last": True,
                    }
                )
        return ProblemOutcome(worked, decisions, extraction.errors, usage=spent)

    def _replayed(self, worked: Worked, rows: list[dict[str, Any]]) -> ProblemOutcome:
        """The outcome a killed or finished pass recorded for a problem, from its decisions."""
        decisions = [
            Decision(
                row["outcome"],
                None,
                template=self.writer.admission.get(row["id"]) if row.get("id") else None,
                rejections=[Rejection(**r) for r in row.get("reasons", [])],
                detail=row.get("detail", ""),
                resumed=True,
            )
            for row in rows
            if row["outcome"] in {"added", "merged", "rejected"}
        ]
        errors = [e for row in rows for e in row.get("errors", [])]
        return ProblemOutcome(worked, decisions, errors, resumed=True)

    def _decide(self, worked: Worked, candidate: Candidate) -> Decision:
        if candidate.template is None:
            rejection = Rejection("schema", "; ".join(candidate.errors[:6]), rule="schema")
            return Decision("rejected", None, rejections=[rejection])
        origin = Origin(
            by="grow",
            source=worked.source,
            record=worked.record,
            model=self.model,
            prompt_version=self.prompt.version,
        )
        return self.writer.submit(candidate.template, origin)

    def _reparse(self, worked: Worked, logged: dict[str, Any]) -> Extraction:
        provenance = provenance_for(worked, self.model, self.prompt.version)
        candidates, errors = (
            parse_reply(logged["raw"][-1], provenance) if logged["raw"] else ([], [])
        )
        return Extraction(candidates, list(logged["raw"]), errors, _usage(logged))

    def _reject(self, worked: Worked, candidate: Candidate, decision: Decision) -> None:
        self.rejected.append(
            {
                "source": worked.source,
                "record": worked.record,
                "candidate": candidate.data,
                "reasons": [f"{r.field}: {r.message}" for r in decision.rejections],
            }
        )

    def _write_review(self, worked: Worked, decision: Decision) -> None:
        assert self.review_dir is not None
        template = decision.candidate
        assert template is not None
        if decision.outcome == "added":
            final = decision.template.id if decision.template else template.id
            verdict = "would be added" + (f" as {final}" if final != template.id else "")
        elif decision.outcome == "merged":
            verdict = f"would be merged {decision.detail}"
        else:
            verdict = "rejected: " + decision.reason
        header = (
            f"# candidate from {worked.source} record {worked.record}\n"
            f"# verdict: {verdict}\n"
            "# Edit freely, then `flux library accept` this folder (or this file).\n"
        )
        self.review_dir.mkdir(parents=True, exist_ok=True)
        number = len(list(self.review_dir.glob("*.yaml")))
        while True:  # the next free number: a file a person is editing is never replaced
            number += 1
            path = self.review_dir / f"{number:03d}-{template.id.rsplit('.', 1)[-1]}.yaml"
            try:
                with path.open("x", encoding="utf-8") as out:
                    out.write(header + template_yaml(template))
                return
            except FileExistsError:
                continue


def accept_folder(
    writer: LibraryWriter, folder: Path, files: list[Path] | None = None
) -> list[tuple[Path, Decision | None, str]]:
    """Submit reviewed candidates; accepted and merged files move to `accepted/`.

    Returns (file, decision or None, message) per file; a file that does not parse is
    reported with its problems and left in place.
    """
    folder = Path(folder)
    chosen = files or sorted(p for p in folder.glob("*.yaml") if p.is_file())
    results: list[tuple[Path, Decision | None, str]] = []
    for path in chosen:
        template, issues = parse_template_file(path)
        if template is None:
            results.append((path, None, "; ".join(f"{i.field}: {i.message}" for i in issues)))
            continue
        provenance = template.provenance
        origin = Origin(
            by="accept",
            source=provenance.source,
            record=provenance.record,
            model=provenance.model,
            prompt_version=provenance.prompt_version,
        )
        decision = writer.submit(template, origin)
        if decision.outcome != "rejected" and not writer.dry_run:
            done = path.parent / ACCEPTED_DIR / path.name
            done.parent.mkdir(exist_ok=True)
            path.replace(done)
        results.append((path, decision, decision.reason))
    return results


def _key(worked: Worked) -> str:
    return f"{worked.source}\0{worked.record}"


def _usage(logged: dict[str, Any]) -> Usage:
    return Usage(**logged["usage"]) if logged.get("usage") else Usage()


def _tags(writer: LibraryWriter) -> list[str]:
    """The tags a template may use: the vocabulary, or (without one) those in use."""
    vocabulary, _ = load_tag_vocabulary(writer.folder)
    if vocabulary is not None:
        return sorted(vocabulary)
    return sorted({tag for t in writer.admission.templates() for tag in t.tags})


def _sample(templates: list[ThoughtTemplate]) -> ThoughtTemplate:
    """A template the prompt names as an example of what the library holds (the shortest)."""
    if not templates:
        raise ValueError("the library is empty: there is no template to name as an example")
    return min(templates, key=lambda t: len(t.model_dump_json()))

"""A growth pass over a small real library: extraction from a scripted model, the real gate
(tag vocabulary, sandboxed `check`, near-duplicates by the real embedder), the writer, the
log, resuming, dry runs and review folders."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from flux_agent.agent import AgentContext, FluxAgent, load_run
from flux_agent.backends.base import BackendError, GenerationRequest
from flux_agent.backends.scripted import ScriptedBackend
from flux_agent.config import AgentSettings, Settings
from flux_agent.growth.extract import DEFAULT_PROMPT, ExtractionPrompt, Worked
from flux_agent.growth.grow import (
    ACCEPTED_DIR,
    DECISIONS_FILE,
    EXTRACTIONS_FILE,
    REJECTED_FILE,
    Grower,
    GrowSummary,
    ProblemOutcome,
    accept_folder,
)
from flux_agent.growth.sources import RUNS, from_runs, solution_text
from flux_agent.storage import JsonlLog
from flux_agent.templates import validate_library
from flux_agent.templates.admission import Admission
from flux_agent.templates.chroma_store import open_store
from flux_agent.templates.journal import LOG_FILE, library_fingerprint, read_log
from flux_agent.templates.library import parse_template_file, template_files
from flux_agent.templates.writer import LibraryWriter
from tests.unit.growth.conftest import (
    GARBAGE,
    MODEL,
    NEW_PITFALL,
    SOURCE,
    VIETA,
    WORKED,
    copy_small_library,
    euclid_template,
    problem_of,
    reply,
    scripted_model,
    wrong_check_template,
)

EUCLID = "number_theory.gcd.euclidean_algorithm_gcd"
TODAY = dt.date.today()


def make_writer(folder: Path, embedder, sandbox, *, store=None, dry_run=False) -> LibraryWriter:
    """A writer as a fresh process would build it: the library read from disk."""
    return LibraryWriter(Admission.load(folder, embedder), sandbox, store, dry_run=dry_run)


def make_grower(writer: LibraryWriter, backend, work_dir: Path, **options) -> Grower:
    return Grower(
        writer, backend, model=MODEL, work_dir=work_dir, prompt=ExtractionPrompt.load(), **options
    )


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file below `folder` (hidden ones too), by relative name."""
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def templates_snapshot(folder: Path) -> dict[str, bytes]:
    """The templates and their history, without the log (its lines carry timestamps)."""
    return templates_snapshot_of(snapshot(folder))


def templates_snapshot_of(files: dict[str, bytes]) -> dict[str, bytes]:
    return {name: data for name, data in files.items() if name != LOG_FILE}


def assert_counts(summary: GrowSummary) -> None:
    assert (summary.problems, summary.candidates) == (3, 3)
    assert (summary.added, summary.merged, summary.rejected) == (1, 1, 1)
    assert summary.failed_replies == 1
    assert dict(summary.reasons) == {"check fails": 1, "no usable reply": 1}


# --- a whole pass


async def test_a_pass_adds_merges_rejects_and_logs(tmp_path, small_library, embedder, sandbox):
    settings = Settings(data_dir=tmp_path / "data", library_path=small_library)
    store = open_store(settings, embedder)
    writer = make_writer(small_library, embedder, sandbox, store=store)
    backend = ScriptedBackend(scripted_model())
    work = tmp_path / "work"
    seen: list[ProblemOutcome] = []

    summary = await make_grower(writer, backend, work).run(
        WORKED, on_problem=lambda outcome, _: seen.append(outcome)
    )

    assert_counts(summary)
    assert len(backend.calls) == 4  # one each, and one repair retry of the garbage
    assert summary.usage.calls == 4 and summary.usage.completion_tokens > 0
    assert [o.worked.record for o in seen] == ["gcd-1", "roots-2", "hard-3"]
    assert [d.outcome for d in seen[0].decisions] == ["added", "rejected"]
    assert seen[0].decisions[1].reason == "check: evaluates to 120, but example.answer is 60"
    (merged,) = seen[1].decisions
    assert merged.outcome == "merged" and merged.merged_into == VIETA
    assert merged.detail.startswith(f"into {VIETA} v2 (cosine ") and "+1 pitfalls" in merged.detail
    assert seen[2].decisions == [] and seen[2].errors[0].startswith("the reply is not JSON")

    # The library: one new file, one new version (the old one kept), nothing else.
    added, _ = parse_template_file(small_library / "number_theory/euclidean_algorithm_gcd.yaml")
    assert added is not None and added.id == EUCLID and added.version == 1
    provenance = added.provenance
    assert (provenance.kind, provenance.source, provenance.record) == ("extracted", SOURCE, "gcd-1")
    assert (provenance.model, provenance.prompt_version, provenance.date) == (
        MODEL,
        DEFAULT_PROMPT,
        TODAY,
    )
    vieta, _ = parse_template_file(small_library / "algebra/vieta_sum_product.yaml")
    assert vieta.version == 2 and vieta.pitfalls[-1] == NEW_PITFALL
    (merge,) = vieta.provenance.merges
    assert (merge.version, merge.source, merge.record, merge.model) == (2, SOURCE, "roots-2", MODEL)
    assert (merge.prompt_version, merge.date, merge.added) == (
        DEFAULT_PROMPT,
        TODAY,
        {"pitfalls": 1},
    )
    old, _ = parse_template_file(small_library / ".history" / VIETA / "v1.yaml")
    assert old.version == 1 and NEW_PITFALL not in old.pitfalls
    names = {str(p.relative_to(small_library)) for p in template_files(small_library)}
    assert len(names) == 6 and "algebra/root_sum_product_shortcut.yaml" not in names
    assert not (small_library / "counting_probability").exists()
    report = validate_library(small_library, sandbox=sandbox, embedder=embedder)
    assert report.ok, report.issues

    # The growth log says where each change came from.
    entries = read_log(small_library)
    assert [(e.action, e.id, e.version, e.record) for e in entries] == [
        ("added", EUCLID, 1, "gcd-1"),
        ("merged", VIETA, 2, "roots-2"),
    ]
    for entry in entries:
        assert (entry.by, entry.source, entry.model) == ("grow", SOURCE, MODEL)
        assert entry.prompt_version == DEFAULT_PROMPT and entry.candidate
        assert dt.datetime.fromisoformat(entry.at).date() == dt.datetime.now(dt.UTC).date()
    assert entries[0].path == "number_theory/euclidean_algorithm_gcd.yaml"

    # Rejected candidates and replies, with their reasons.
    check, garbage = JsonlLog(work / REJECTED_FILE).read()
    assert (check["source"], check["record"]) == (SOURCE, "gcd-1")
    assert check["candidate"] == wrong_check_template()
    assert check["reasons"] == ["check: evaluates to 120, but example.answer is 60"]
    assert (garbage["record"], garbage["candidate"], garbage["reply"]) == ("hard-3", None, GARBAGE)
    assert len(garbage["reasons"]) == 1 and garbage["reasons"][0].startswith("the reply is not")

    # Every reply and decision is on disk for resuming.
    extractions = JsonlLog(work / EXTRACTIONS_FILE).read()
    assert [len(row["raw"]) for row in extractions] == [1, 1, 2]
    assert {(row["model"], row["prompt_version"]) for row in extractions} == {
        (MODEL, DEFAULT_PROMPT)
    }
    decisions = JsonlLog(work / DECISIONS_FILE).read()
    assert [(d["index"], d["outcome"], d["last"]) for d in decisions] == [
        (0, "added", False),
        (1, "rejected", True),
        (0, "merged", True),
        (-1, "none", True),
    ]

    # The index holds the new template and knows it is in step with the folder.
    assert store.get(EUCLID) is not None and store.get(VIETA).version == 2
    assert store.library_fingerprint == library_fingerprint(small_library)


async def test_a_dry_run_decides_the_same_and_writes_nothing(
    tmp_path, small_library, embedder, sandbox
):
    before = snapshot(small_library)
    writer = make_writer(small_library, embedder, sandbox, dry_run=True)
    backend = ScriptedBackend(scripted_model())
    work = tmp_path / "work"
    seen: list[ProblemOutcome] = []

    summary = await make_grower(writer, backend, work).run(
        WORKED, on_problem=lambda outcome, _: seen.append(outcome)
    )

    assert_counts(summary)
    assert snapshot(small_library) == before
    assert not (small_library / LOG_FILE).exists() and read_log(small_library) == []
    assert not (work / DECISIONS_FILE).exists()  # nothing decided for real: nothing to resume
    assert len(JsonlLog(work / REJECTED_FILE).read()) == 2
    assert seen[0].decisions[0].template.id == EUCLID
    assert seen[1].decisions[0].template.version == 2

    # The real pass afterwards reuses the logged replies instead of asking again.
    silent = ScriptedBackend([])
    real = make_writer(small_library, embedder, sandbox)
    summary = await make_grower(real, silent, work).run(WORKED)
    assert silent.calls == []
    assert_counts(summary)
    assert [e.id for e in read_log(small_library)] == [EUCLID, VIETA]


# --- resuming


async def uninterrupted_library(tmp_path: Path, embedder, sandbox) -> Path:
    folder = copy_small_library(tmp_path / "reference")
    writer = make_writer(folder, embedder, sandbox)
    await make_grower(writer, ScriptedBackend(scripted_model()), tmp_path / "ref-work").run(WORKED)
    return folder


async def test_an_interrupted_pass_resumes_without_asking_or_deciding_twice(
    tmp_path, small_library, embedder, sandbox
):
    work = tmp_path / "work"
    crashing = ScriptedBackend(scripted_model(fail_on="x^2 - 5x + 6"))
    with pytest.raises(BackendError, match="went away"):
        await make_grower(make_writer(small_library, embedder, sandbox), crashing, work).run(WORKED)
    assert len(JsonlLog(work / EXTRACTIONS_FILE).read()) == 1
    assert [e.id for e in read_log(small_library)] == [EUCLID]

    backend = ScriptedBackend(scripted_model())
    writer = make_writer(small_library, embedder, sandbox)
    submitted = []
    submit = writer.submit
    writer.submit = lambda template, origin: (
        submitted.append(template.id) or submit(template, origin)
    )
    seen: list[ProblemOutcome] = []
    summary = await make_grower(writer, backend, work).run(
        WORKED, on_problem=lambda outcome, _: seen.append(outcome)
    )

    assert all("462 and 1071" not in problem_of(r) for r in backend.calls)
    assert len(backend.calls) == 3  # problem 2, problem 3 and its retry
    assert submitted == ["algebra.quadratics.root_sum_product_shortcut"]
    assert [o.resumed for o in seen] == [True, False, False]
    assert [d.outcome for d in seen[0].decisions] == ["added", "rejected"]
    assert seen[0].usage.calls == 0
    assert_counts(summary)
    keys = [(d["key"], d["index"]) for d in JsonlLog(work / DECISIONS_FILE).read()]
    assert len(keys) == len(set(keys)) == 4
    assert [(e.action, e.id) for e in read_log(small_library)] == [
        ("added", EUCLID),
        ("merged", VIETA),
    ]
    assert len(JsonlLog(work / REJECTED_FILE).read()) == 2

    reference = await uninterrupted_library(tmp_path, embedder, sandbox)
    assert templates_snapshot(small_library) == templates_snapshot(reference)


async def test_a_crash_between_two_candidates_decides_only_the_second_again(
    tmp_path, small_library, embedder, sandbox
):
    work = tmp_path / "work"
    writer = make_writer(small_library, embedder, sandbox)
    submit = writer.submit
    calls = iter([submit, None])

    def crash_on_second(template, origin):
        chosen = next(calls)
        if chosen is None:
            raise KeyboardInterrupt
        return chosen(template, origin)

    writer.submit = crash_on_second
    with pytest.raises(KeyboardInterrupt):
        await make_grower(writer, ScriptedBackend(scripted_model()), work).run(WORKED[:1])
    assert [e.id for e in read_log(small_library)] == [EUCLID]
    assert [d["last"] for d in JsonlLog(work / DECISIONS_FILE).read()] == [False]

    backend = ScriptedBackend(scripted_model())
    writer = make_writer(small_library, embedder, sandbox)
    submitted = []
    submit = writer.submit
    writer.submit = lambda template, origin: (
        submitted.append(template.id) or submit(template, origin)
    )
    seen: list[ProblemOutcome] = []
    summary = await make_grower(writer, backend, work).run(
        WORKED[:1], on_problem=lambda outcome, _: seen.append(outcome)
    )

    assert backend.calls == []  # the reply was logged before the crash
    assert submitted == ["counting_probability.arrangements.multiset_permutations"]
    first, second = seen[0].decisions
    assert (first.outcome, first.resumed) == ("added", True)
    assert (second.outcome, second.resumed) == ("rejected", False)
    assert (summary.added, summary.rejected) == (1, 1)
    assert [(d["index"], d["last"]) for d in JsonlLog(work / DECISIONS_FILE).read()] == [
        (0, False),
        (1, True),
    ]
    assert [e.id for e in read_log(small_library)] == [EUCLID]
    assert len(template_files(small_library)) == 6


@pytest.mark.parametrize("lost", ["decision", "decision-and-log-line"])
async def test_a_write_whose_decision_was_lost_is_not_written_twice(
    tmp_path, small_library, embedder, sandbox, lost
):
    """Killed after the template was written (and maybe logged) but before the pass
    recorded its decision: the writer recognises its own work."""
    work = tmp_path / "work"
    writer = make_writer(small_library, embedder, sandbox)
    await make_grower(writer, ScriptedBackend(scripted_model()), work).run(WORKED[:1])
    (work / DECISIONS_FILE).unlink()
    if lost == "decision-and-log-line":
        (small_library / LOG_FILE).unlink()
    files = snapshot(small_library)

    seen: list[ProblemOutcome] = []
    writer = make_writer(small_library, embedder, sandbox)
    backend = ScriptedBackend([])
    await make_grower(writer, backend, work).run(
        WORKED[:1], on_problem=lambda outcome, _: seen.append(outcome)
    )

    added, rejected = seen[0].decisions
    assert (added.outcome, added.resumed, added.template.id) == ("added", True, EUCLID)
    expected = "done earlier" if lost == "decision" else "its log line was missing"
    assert expected in added.detail
    assert rejected.outcome == "rejected"
    assert templates_snapshot(small_library) == templates_snapshot_of(files)
    assert [(e.action, e.id, e.record) for e in read_log(small_library)] == [
        ("added", EUCLID, "gcd-1")
    ]


async def test_a_taken_id_is_renamed_and_the_review_says_so(
    tmp_path, small_library, embedder, sandbox
):
    taken = "number_theory.divisors.count_divisors_from_factorization"
    problem = [WORKED[0]]
    script = [reply({**euclid_template(), "id": taken})]
    review = tmp_path / "review"
    dry = make_writer(small_library, embedder, sandbox, dry_run=True)
    await make_grower(dry, ScriptedBackend(script), tmp_path / "w1", review_dir=review).run(problem)
    (written,) = review.iterdir()
    assert written.read_text().splitlines()[1] == f"# verdict: would be added as {taken}_2"

    seen: list[ProblemOutcome] = []
    writer = make_writer(small_library, embedder, sandbox)
    await make_grower(writer, ScriptedBackend(script), tmp_path / "w2").run(
        problem, on_problem=lambda outcome, _: seen.append(outcome)
    )
    (decision,) = seen[0].decisions
    assert decision.outcome == "added" and decision.template.id == f"{taken}_2"
    assert f"renamed from {taken}" in decision.detail
    renamed, _ = parse_template_file(
        small_library / "number_theory/count_divisors_from_factorization_2.yaml"
    )
    assert renamed.id == f"{taken}_2"
    original, _ = parse_template_file(
        small_library / "number_theory/count_divisors_from_factorization.yaml"
    )
    assert original.name == "Counting divisors from the prime factorisation"


async def test_without_merging_a_near_duplicate_is_rejected(
    tmp_path, small_library, embedder, sandbox
):
    writer = LibraryWriter(Admission.load(small_library, embedder), sandbox, merge=False)
    seen: list[ProblemOutcome] = []
    summary = await make_grower(writer, ScriptedBackend(scripted_model()), tmp_path / "w").run(
        WORKED[1:2], on_problem=lambda outcome, _: seen.append(outcome)
    )
    (decision,) = seen[0].decisions
    assert decision.outcome == "rejected"
    assert decision.reason.startswith(f"technique: a near-duplicate of {VIETA} (cosine ")
    assert (summary.merged, summary.rejected) == (0, 1)
    assert read_log(small_library) == []
    (line,) = JsonlLog(tmp_path / "w" / REJECTED_FILE).read()
    assert line["reasons"][0].startswith(f"technique: a near-duplicate of {VIETA}")


async def test_the_same_candidate_from_two_problems_is_added_once(
    tmp_path, small_library, embedder, sandbox
):
    two = [WORKED[0], Worked(SOURCE, "gcd-2", "Find the greatest common divisor of 84 and 120.")]
    script = [reply(euclid_template())] * 2
    outcomes = {}
    for dry_run in (True, False):
        writer = make_writer(small_library, embedder, sandbox, dry_run=dry_run)
        summary = await make_grower(writer, ScriptedBackend(script), tmp_path / str(dry_run)).run(
            two
        )
        outcomes[dry_run] = (summary.added, summary.rejected, dict(summary.reasons))
    assert [e.id for e in read_log(small_library)] == [EUCLID]  # holds: written once
    assert outcomes[False] == outcomes[True] == (1, 1, {"near-duplicate adding nothing": 1})


# --- review, then accept


async def test_review_writes_candidates_with_verdicts_and_accept_adds_them(
    tmp_path, small_library, embedder, sandbox
):
    before = snapshot(small_library)
    review = tmp_path / "review"
    writer = make_writer(small_library, embedder, sandbox, dry_run=True)
    summary = await make_grower(
        writer, ScriptedBackend(scripted_model()), tmp_path / "work", review_dir=review
    ).run(WORKED)

    assert_counts(summary)
    assert snapshot(small_library) == before
    files = sorted(p.name for p in review.iterdir())
    assert files == [
        "001-euclidean_algorithm_gcd.yaml",
        "002-multiset_permutations.yaml",
        "003-root_sum_product_shortcut.yaml",
    ]
    verdicts = {name: (review / name).read_text().splitlines()[:2] for name in files}
    assert verdicts[files[0]] == [
        f"# candidate from {SOURCE} record gcd-1",
        "# verdict: would be added",
    ]
    assert verdicts[files[1]][1] == (
        "# verdict: rejected: check: evaluates to 120, but example.answer is 60"
    )
    assert verdicts[files[2]][1].startswith(f"# verdict: would be merged into {VIETA} v2")
    candidate, issues = parse_template_file(review / files[0])
    assert issues == [] and candidate.provenance.record == "gcd-1"

    # A person fixes the wrong check, and breaks another file by hand.
    fixable = review / files[1]
    fixable.write_text(
        fixable.read_text().replace(
            "factorial(6) / factorial(3)", "factorial(6) / (factorial(3) * factorial(2))"
        )
    )
    broken = review / "004-broken.yaml"
    broken.write_text("id: algebra.broken.thing\nname: Broken\nsteps: [one]\n")

    real = make_writer(small_library, embedder, sandbox)
    results = accept_folder(real, review)

    outcomes = {path.name: decision and decision.outcome for path, decision, _ in results}
    assert outcomes == {
        files[0]: "added",
        files[1]: "added",
        files[2]: "merged",
        "004-broken.yaml": None,
    }
    message = next(m for path, _, m in results if path == broken)
    assert "description: Field required" in message
    assert sorted(p.name for p in (review / ACCEPTED_DIR).iterdir()) == files
    assert sorted(p.name for p in review.glob("*.yaml")) == ["004-broken.yaml"]
    entries = read_log(small_library)
    assert [(e.action, e.by, e.record) for e in entries] == [
        ("added", "accept", "gcd-1"),
        ("added", "accept", "gcd-1"),
        ("merged", "accept", "roots-2"),
    ]
    assert {(e.source, e.model, e.prompt_version) for e in entries} == {
        (SOURCE, MODEL, DEFAULT_PROMPT)
    }
    report = validate_library(small_library, sandbox=sandbox, embedder=embedder)
    assert report.ok, report.issues
    assert len(template_files(small_library)) == 7


async def test_a_later_review_pass_never_overwrites_an_edited_candidate(
    tmp_path, small_library, embedder, sandbox
):
    review = tmp_path / "review"
    first = [reply(wrong_check_template(), euclid_template())]
    writer = make_writer(small_library, embedder, sandbox, dry_run=True)
    grower = make_grower(writer, ScriptedBackend(first), tmp_path / "w1", review_dir=review)
    await grower.run(WORKED[:1])
    assert sorted(p.name for p in review.iterdir()) == [
        "001-multiset_permutations.yaml",
        "002-euclidean_algorithm_gcd.yaml",
    ]
    # A person throws the first candidate away and improves the second.
    (review / "001-multiset_permutations.yaml").unlink()
    edited = review / "002-euclidean_algorithm_gcd.yaml"
    edited.write_text(edited.read_text().replace("Greatest common divisor", "GCD, by hand"))
    mine = edited.read_text()

    other = [Worked("other.jsonl", "7", "Find gcd(84, 120).")]
    writer = make_writer(small_library, embedder, sandbox, dry_run=True)
    grower = make_grower(
        writer, ScriptedBackend([reply(euclid_template())]), tmp_path / "w2", review_dir=review
    )
    await grower.run(other)

    assert edited.read_text() == mine
    assert len(list(review.glob("*.yaml"))) == 2


# --- solved problems from the run store


def plan_json(goal: str) -> str:
    steps = [{"template_id": VIETA, "goal": goal}]
    return json.dumps({"analysis": "quadratic roots", "steps": steps})


def solver_replies(answer: str) -> list[str]:
    return [
        "a = 1 and b = -5, so the sum is -b/a.",
        json.dumps({"result": answer, "expression": "-(-5)/1"}),
        json.dumps({"answer": answer}),
    ]


async def solve(tmp_path, store, sandbox, *, run_id: str, expected: str | None, answer="5"):
    context = AgentContext(
        navigator=ScriptedBackend([plan_json("Find the sum of the roots.")]),
        solver=ScriptedBackend(solver_replies(answer)),
        store=store,
        settings=AgentSettings(),
        sandbox=sandbox,
    )
    agent = FluxAgent(context, tmp_path / "runs.sqlite")
    return await agent.solve(WORKED[1].problem, run_id=run_id, expected=expected)


async def test_from_runs_picks_correct_runs_and_vouched_ones(tmp_path, keyword_store, sandbox):
    runs = tmp_path / "runs.sqlite"
    right = await solve(tmp_path, keyword_store, sandbox, run_id="right", expected="5")
    wrong = await solve(tmp_path, keyword_store, sandbox, run_id="wrong", expected="6")
    vouched = await solve(tmp_path, keyword_store, sandbox, run_id="vouched", expected=None)
    assert (right.correct, wrong.correct, vouched.correct) == (True, False, None)

    (only,) = await from_runs(runs)
    assert (only.source, only.record, only.problem) == (RUNS, "right", WORKED[1].problem)
    assert only.answer == "5"
    assert only.solution == solution_text(await load_run(runs, "right"))

    both = await from_runs(runs, good=["vouched"])
    assert [w.record for w in both] == ["vouched", "right"]
    assert [w.record for w in await from_runs(runs, good=["vouched"], limit=1)] == ["vouched"]

    with pytest.raises(ValueError, match="no run 'nope'"):
        await from_runs(runs, good=["nope"])
    assert await from_runs(tmp_path / "no-store.sqlite") == []


async def test_solution_text_lists_each_step_then_the_answer(tmp_path, keyword_store, sandbox):
    result = await solve(tmp_path, keyword_store, sandbox, run_id="r", expected="5")
    assert solution_text(result) == (
        f"Step 1 ({VIETA}): Find the sum of the roots.\n"
        "a = 1 and b = -5, so the sum is -b/a.\n"
        "Result: 5\n\n"
        "Answer: 5"
    )


async def test_a_vouched_run_without_an_answer_is_refused(tmp_path, keyword_store, sandbox):
    def flaky(request: GenerationRequest) -> str:
        raise BackendError("server went away")

    context = AgentContext(
        navigator=ScriptedBackend([plan_json("Find the sum of the roots.")]),
        solver=ScriptedBackend(flaky),
        store=keyword_store,
        settings=AgentSettings(),
        sandbox=sandbox,
    )
    agent = FluxAgent(context, tmp_path / "runs.sqlite")
    with pytest.raises(BackendError):
        await agent.solve(WORKED[1].problem, run_id="cut")

    with pytest.raises(ValueError, match="run 'cut' has no answer to learn from"):
        await from_runs(tmp_path / "runs.sqlite", good=["cut"])
    assert await from_runs(tmp_path / "runs.sqlite") == []

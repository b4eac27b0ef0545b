"""`LibraryWriter`: the gate, adding, renaming, merging into new versions, dry runs,
resuming, and keeping a real Chroma index in step with the folder.

The library is a copy of four shipped templates (plus `tags.yaml`) in `tmp_path`;
candidates are other shipped templates, so they pass the gate unless a test breaks
them on purpose. Near-duplicates are judged with the real bundled model, the one the
threshold was calibrated with (loaded once, its vectors cached by text).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import chromadb
import numpy as np
import pytest
import yaml
from chromadb.config import Settings as ChromaSettings

from flux_agent.storage import JsonlLog
from flux_agent.templates import default_library_path, load_library, validate_library
from flux_agent.templates.admission import HISTORY_DIR, Admission, write_template
from flux_agent.templates.chroma_store import ChromaTemplateStore
from flux_agent.templates.embeddings import Embedder, load_embedder
from flux_agent.templates.journal import LOG_FILE, library_fingerprint, read_log, sync_index
from flux_agent.templates.library import parse_template_file, template_files
from flux_agent.templates.merge import merged_template, plan_merge
from flux_agent.templates.model import Merge, ThoughtTemplate
from flux_agent.templates.writer import Decision, LibraryWriter, Origin, candidate_key

SHIPPED = default_library_path()
LIBRARY_FILES = (
    "algebra/vieta_sum_product.yaml",
    "algebra/vertex_extreme_value.yaml",
    "counting_probability/circular_seating.yaml",
    "number_theory/euclidean_algorithm.yaml",
)
VIETA = "algebra.quadratics.vieta_sum_product"
EUCLID = "number_theory.gcd_lcm.euclidean_algorithm"
POLYGONS = "geometry.polygons.polygon_angle_sums"

ORIGIN = Origin(
    by="grow",
    source="runs.jsonl",
    record="run-42",
    model="qwen2.5-math-1.5b",
    prompt_version="extract-v2",
)

# Items for merges, each far (cosine < 0.55 with the real model) from every item Vieta
# has and from each other.
NEW_CUE = "A coefficient is unknown and one root is stated to be twice the other."
NEW_PITFALL = (
    "Assuming the roots are real when the discriminant is negative; "
    "the relations hold for complex roots too."
)
SECOND_CUE = "Only the average of the two solutions is asked for."
SECOND_PITFALL = "Dividing by a leading coefficient that could be zero for some parameter value."


class CachedEmbedder:
    """The real model, remembering each text's vector (the model is not under test)."""

    def __init__(self, model: Embedder) -> None:
        self._model = model
        self._vectors: dict[str, list[float]] = {}
        self.name = model.name

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        missing = list(dict.fromkeys(t for t in texts if t not in self._vectors))
        if missing:
            self._vectors.update(zip(missing, self._model.embed(missing), strict=True))
        return [self._vectors[t] for t in texts]


class DigestEmbedder:
    """Equal texts get equal vectors, different texts nearly orthogonal ones (model-free)."""

    name = "test-digest"

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        vectors = []
        for text in texts:
            seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")
            vector = np.random.default_rng(seed).standard_normal(256)
            vectors.append((vector / np.linalg.norm(vector)).tolist())
        return vectors


@pytest.fixture(scope="session")
def embedder() -> CachedEmbedder:
    return CachedEmbedder(load_embedder(None))


def shipped(relative: str) -> ThoughtTemplate:
    template, issues = parse_template_file(SHIPPED / relative)
    assert template is not None, issues
    return template


def candidate(relative: str, **changes: Any) -> ThoughtTemplate:
    """A shipped template as a model would extract it (extracted provenance), with changes."""
    data = shipped(relative).model_dump()
    data["provenance"] = {
        "kind": "extracted",
        "source": "runs.jsonl",
        "date": dt.date(2026, 12, 1),
        "model": "qwen2.5-math-1.5b",
        "record": "run-42",
        "prompt_version": "extract-v2",
    }
    data.update(changes)
    return ThoughtTemplate.model_validate(data)


def vieta_with(cue: str, pitfall: str, **changes: Any) -> ThoughtTemplate:
    """Vieta again (a near-duplicate), knowing one more cue and one more pitfall."""
    vieta = shipped("algebra/vieta_sum_product.yaml")
    return candidate(
        "algebra/vieta_sum_product.yaml",
        applies_when=[*vieta.applies_when, cue],
        pitfalls=[*vieta.pitfalls, pitfall],
        **changes,
    )


def make_library(folder: Path) -> Path:
    """Four shipped templates and the tag vocabulary (shipped `distinct.yaml` names templates
    that are not here, so it is left out)."""
    for relative in LIBRARY_FILES:
        (folder / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(SHIPPED / relative, folder / relative)
    shutil.copy(SHIPPED / "tags.yaml", folder / "tags.yaml")
    return folder


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return make_library(tmp_path / "library")


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file below the folder, hidden ones included, except the lock file (taken, not
    library content)."""
    return {
        str(path.relative_to(folder)): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file() and path.name != ".lock"
    }


def writer_for(folder: Path, embedder, sandbox, **options: Any) -> LibraryWriter:
    return LibraryWriter(Admission.load(folder, embedder), sandbox, **options)


def chroma_store(path: Path, embedder) -> ChromaTemplateStore:
    client = chromadb.PersistentClient(
        path=str(path), settings=ChromaSettings(anonymized_telemetry=False)
    )
    return ChromaTemplateStore(client, embedder)


# --- the gate -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"tags": ["polygons", "made-up-tag"]}, "tags", "made-up-tag"),
        ({"check": "1 + 1"}, "check", "evaluates to 2, but example.answer is"),
        ({"check": "((1 +"}, "check", "does not evaluate"),
    ],
    ids=["unknown-tag", "check-wrong-value", "check-not-an-expression"],
)
def test_a_candidate_breaking_a_rule_is_rejected_and_nothing_is_written(
    folder, embedder, sandbox, changes, field, message
):
    before = snapshot(folder)
    writer = writer_for(folder, embedder, sandbox)

    decision = writer.submit(candidate("geometry/polygon_angle_sums.yaml", **changes), ORIGIN)

    assert decision.outcome == "rejected"
    assert [r.field for r in decision.rejections] == [field]
    assert decision.rejections[0].kind == "invalid"
    assert message in decision.reason
    assert snapshot(folder) == before
    assert read_log(folder) == []


def test_a_check_that_ignores_the_example_is_rejected_when_grounding_is_asked(
    folder, embedder, sandbox
):
    # "12" restates the answer: it evaluates right, but proves nothing about the example.
    restating = candidate("geometry/polygon_angle_sums.yaml", check="12")
    # The shipped check, 360/(180/6), derives its 6 and would be rejected too.
    using_the_example = candidate("geometry/polygon_angle_sums.yaml", check="360/(180/(5 + 1))")

    lenient = writer_for(folder, embedder, sandbox, dry_run=True)
    strict = writer_for(folder, embedder, sandbox, grounded=True)

    assert lenient.submit(restating, ORIGIN).outcome == "added"
    rejected = strict.submit(restating, ORIGIN)
    assert rejected.outcome == "rejected"
    assert "uses none of the numbers of the example's problem" in rejected.reason
    assert read_log(folder) == []
    assert strict.submit(using_the_example, ORIGIN).outcome == "added"


def test_a_near_duplicate_adding_nothing_is_rejected_naming_the_existing_template(
    folder, embedder, sandbox
):
    before = snapshot(folder)
    writer = writer_for(folder, embedder, sandbox)
    again = candidate("algebra/vieta_sum_product.yaml", id="algebra.quadratics.root_relations")

    decision = writer.submit(again, ORIGIN)

    assert decision.outcome == "rejected"
    assert decision.template is None and decision.merged_into is None
    (rejection,) = decision.rejections
    assert (rejection.field, rejection.kind) == ("technique", "conflict")
    assert f"a near-duplicate of {VIETA}" in decision.reason
    assert "adds no new cue, step or pitfall" in decision.reason
    assert decision.similarity is not None and decision.similarity > 0.99
    assert snapshot(folder) == before
    assert read_log(folder) == []
    assert not (folder / LOG_FILE).exists()


# --- adding and renaming --------------------------------------------------------------


def test_a_new_template_is_written_logged_and_keeps_its_provenance(folder, embedder, sandbox):
    writer = writer_for(folder, embedder, sandbox)
    new = candidate("geometry/polygon_angle_sums.yaml")

    decision = writer.submit(new, ORIGIN)

    path = folder / "geometry" / "polygon_angle_sums.yaml"
    assert decision.outcome == "added" and not decision.resumed
    assert decision.path == path and decision.template == new
    assert sorted(t.id for t in load_library(folder)) == sorted(
        [*(shipped(f).id for f in LIBRARY_FILES), POLYGONS]
    )
    written, issues = parse_template_file(path)
    assert issues == [] and written == new
    assert written.provenance.kind == "extracted"
    assert written.provenance.model == "qwen2.5-math-1.5b"
    assert written.provenance.prompt_version == "extract-v2"
    assert "merges" not in yaml.safe_load(path.read_text())["provenance"]
    assert path.stat().st_mode & 0o777 == 0o644  # readable by a server running as another user
    (entry,) = read_log(folder)
    assert (entry.action, entry.id, entry.version, entry.path) == (
        "added",
        POLYGONS,
        1,
        "geometry/polygon_angle_sums.yaml",
    )
    assert (entry.by, entry.source, entry.record, entry.model, entry.prompt_version) == (
        "grow",
        "runs.jsonl",
        "run-42",
        "qwen2.5-math-1.5b",
        "extract-v2",
    )
    assert entry.candidate == candidate_key(new)
    assert validate_library(folder, sandbox=sandbox, embedder=embedder).ok


def _squares_as_vieta() -> ThoughtTemplate:
    """Another technique (difference of squares) under Vieta's id."""
    return candidate("algebra/difference_of_squares.yaml", id=VIETA)


def test_an_id_taken_by_another_technique_is_renamed(folder, embedder, sandbox):
    writer = writer_for(folder, embedder, sandbox)
    vieta_before = (folder / "algebra" / "vieta_sum_product.yaml").read_bytes()

    decision = writer.submit(_squares_as_vieta(), ORIGIN)

    renamed = f"{VIETA}_2"
    assert decision.outcome == "added"
    assert decision.template is not None and decision.template.id == renamed
    assert decision.candidate is not None and decision.candidate.id == VIETA
    assert f"renamed from {VIETA}" in decision.detail
    assert decision.path == folder / "algebra" / "vieta_sum_product_2.yaml"
    assert parse_template_file(decision.path)[0] == decision.template
    assert (folder / "algebra" / "vieta_sum_product.yaml").read_bytes() == vieta_before
    assert [(e.action, e.id) for e in read_log(folder)] == [("added", renamed)]
    assert validate_library(folder, sandbox=sandbox).ok


def test_an_id_taken_by_another_technique_is_a_conflict_without_rename(folder, embedder, sandbox):
    before = snapshot(folder)
    writer = writer_for(folder, embedder, sandbox, rename=False)

    decision = writer.submit(_squares_as_vieta(), ORIGIN)

    assert decision.outcome == "rejected"
    assert [(r.field, r.kind) for r in decision.rejections] == [("id", "conflict")]
    assert snapshot(folder) == before
    assert read_log(folder) == []


# --- merging --------------------------------------------------------------------------


def test_a_near_duplicate_with_new_items_is_merged_into_a_new_version(folder, embedder, sandbox):
    original = shipped("algebra/vieta_sum_product.yaml")
    vieta_path = folder / "algebra" / "vieta_sum_product.yaml"
    writer = writer_for(folder, embedder, sandbox)
    first = vieta_with(NEW_CUE, NEW_PITFALL, id="algebra.quadratics.root_relations")

    decision = writer.submit(first, ORIGIN)

    assert decision.outcome == "merged", decision.reason
    assert decision.merged_into == VIETA and decision.path == vieta_path
    assert not (folder / "algebra" / "root_relations.yaml").exists()
    v2, _ = parse_template_file(vieta_path)
    assert v2 is not None and v2 == decision.template
    assert v2.version == 2
    assert v2.applies_when == [*original.applies_when, NEW_CUE]
    assert v2.pitfalls == [*original.pitfalls, NEW_PITFALL]
    assert v2.steps == original.steps
    assert v2.provenance.date == original.provenance.date  # the template's own provenance stays
    assert v2.provenance.merges == [
        Merge(
            version=2,
            date=v2.provenance.merges[0].date,
            source="runs.jsonl",
            record="run-42",
            model="qwen2.5-math-1.5b",
            prompt_version="extract-v2",
            added={"applies_when": 1, "pitfalls": 1},
        )
    ]
    assert v2.provenance.merges[0].date == dt.date.today()
    history_v1 = folder / HISTORY_DIR / VIETA / "v1.yaml"
    assert parse_template_file(history_v1)[0] == original
    (entry,) = read_log(folder)
    assert (entry.action, entry.id, entry.version, entry.path) == (
        "merged",
        VIETA,
        2,
        "algebra/vieta_sum_product.yaml",
    )
    assert entry.candidate == candidate_key(first)
    assert f"into {VIETA} v2" in entry.detail

    second = writer.submit(vieta_with(SECOND_CUE, SECOND_PITFALL), ORIGIN)

    assert second.outcome == "merged", second.reason
    v3, _ = parse_template_file(vieta_path)
    assert v3 is not None and v3.version == 3
    assert v3.applies_when == [*original.applies_when, NEW_CUE, SECOND_CUE]
    assert v3.pitfalls == [*original.pitfalls, NEW_PITFALL, SECOND_PITFALL]
    assert [m.version for m in v3.provenance.merges] == [2, 3]
    assert parse_template_file(folder / HISTORY_DIR / VIETA / "v2.yaml")[0] == v2
    assert parse_template_file(history_v1)[0] == original
    assert [(e.action, e.version) for e in read_log(folder)] == [("merged", 2), ("merged", 3)]
    assert len(load_library(folder)) == len(LIBRARY_FILES)
    assert validate_library(folder, sandbox=sandbox, embedder=embedder).ok


def test_without_merge_a_near_duplicate_with_new_items_is_rejected(folder, embedder, sandbox):
    before = snapshot(folder)
    writer = writer_for(folder, embedder, sandbox, merge=False)

    decision = writer.submit(vieta_with(NEW_CUE, NEW_PITFALL), ORIGIN)

    assert decision.outcome == "rejected"
    assert f"a near-duplicate of {VIETA}" in decision.reason
    assert snapshot(folder) == before


def test_merge_places_new_steps_after_the_step_they_followed():
    existing = shipped("algebra/vieta_sum_product.yaml")
    s0, s1, s2, s3 = existing.steps
    early = "Sketch the parabola first to see roughly where both roots lie."
    middle_a = "Record the sum and the product in a small table before going on."
    middle_b = "Double-check the sign of each number in that table."
    data = existing.model_dump()
    data["steps"] = [early, s0, s1, middle_a, middle_b, s3]
    other = ThoughtTemplate.model_validate(data)

    plan = plan_merge(existing, other, DigestEmbedder())
    merged = merged_template(existing, plan, source="review", today=dt.date(2026, 12, 2))

    assert plan.steps == [(-1, early), (1, middle_a), (1, middle_b)]
    assert plan.applies_when == [] and plan.pitfalls == []
    assert merged.steps == [early, s0, s1, middle_a, middle_b, s2, s3]
    assert merged.version == 2
    assert merged.provenance.merges == [
        Merge(version=2, date=dt.date(2026, 12, 2), source="review", added={"steps": 3})
    ]


def test_merge_adds_no_steps_from_a_procedure_with_no_step_in_common():
    existing = shipped("algebra/vieta_sum_product.yaml")
    data = existing.model_dump()
    data["steps"] = [f"An entirely different step number {i} of another method." for i in range(3)]

    plan = plan_merge(existing, ThoughtTemplate.model_validate(data), DigestEmbedder())

    assert not plan and plan.describe() == "nothing"


# --- dry runs and resuming ------------------------------------------------------------


def _mixed_candidates() -> list[ThoughtTemplate]:
    polygons = candidate("geometry/polygon_angle_sums.yaml")
    return [
        polygons,
        vieta_with(NEW_CUE, NEW_PITFALL, id="algebra.quadratics.root_relations"),
        candidate("algebra/vieta_sum_product.yaml", id="algebra.quadratics.vieta_again"),
        # The first one's technique again (other tags: not the same candidate).
        polygons.model_copy(
            update={"id": "geometry.polygons.angle_sums_again", "tags": ["angles"]}
        ),
        candidate("geometry/arc_length_sector_area.yaml", tags=["circles", "made-up-tag"]),
    ]


def _summary(decision: Decision) -> tuple:
    return (
        decision.outcome,
        decision.template.id if decision.template else None,
        decision.template.version if decision.template else None,
        decision.merged_into,
        [r.field for r in decision.rejections],
        decision.reason,
    )


def test_a_dry_run_decides_like_a_real_run_and_writes_nothing(tmp_path, embedder, sandbox):
    dry_folder = make_library(tmp_path / "dry")
    real_folder = make_library(tmp_path / "real")
    before = snapshot(dry_folder)

    dry = writer_for(dry_folder, embedder, sandbox, dry_run=True)
    dry_decisions = [dry.submit(c, ORIGIN) for c in _mixed_candidates()]
    real = writer_for(real_folder, embedder, sandbox)
    real_decisions = [real.submit(c, ORIGIN) for c in _mixed_candidates()]

    assert [d.outcome for d in dry_decisions] == [
        "added",
        "merged",
        "rejected",
        "rejected",
        "rejected",
    ]
    assert [_summary(d) for d in dry_decisions] == [_summary(d) for d in real_decisions]
    # The fourth repeats the first one's technique: the dry run saw its own addition.
    assert f"a near-duplicate of {POLYGONS}" in dry_decisions[3].reason
    assert snapshot(dry_folder) == before
    assert not (dry_folder / ".lock").exists()
    assert not (dry_folder / HISTORY_DIR).exists()
    assert not (dry_folder / LOG_FILE).exists()
    assert (real_folder / "geometry" / "polygon_angle_sums.yaml").exists()
    assert len(read_log(real_folder)) == 2


def test_a_candidate_submitted_again_is_resumed_and_not_written_twice(folder, embedder, sandbox):
    new = candidate("geometry/polygon_angle_sums.yaml")
    first = writer_for(folder, embedder, sandbox).submit(new, ORIGIN)
    after_first = snapshot(folder)
    data = new.model_dump()
    data["provenance"]["date"] = dt.date(2027, 1, 15)
    data["provenance"]["record"] = "run-43"
    later = ThoughtTemplate.model_validate(data)
    assert later != new

    # A fresh writer, as a restarted run would have.
    again = writer_for(folder, embedder, sandbox).submit(later, ORIGIN)

    assert first.outcome == "added" and not first.resumed
    assert again.resumed
    assert again.outcome == "added"
    assert again.template == first.template and again.path == first.path
    assert "done earlier" in again.detail
    assert snapshot(folder) == after_first
    assert len(read_log(folder)) == 1


def test_a_template_written_but_not_logged_is_resumed_and_its_log_line_written(
    folder, embedder, sandbox
):
    new = candidate("geometry/polygon_angle_sums.yaml")
    write_template(folder, new)  # a run killed between writing the file and logging it
    after_write = snapshot(folder)

    decision = writer_for(folder, embedder, sandbox).submit(new, ORIGIN)

    assert decision.resumed and decision.outcome == "added"
    assert decision.template == new
    assert "log line was missing" in decision.detail
    (entry,) = read_log(folder)
    assert (entry.action, entry.id, entry.candidate) == ("added", POLYGONS, candidate_key(new))
    assert snapshot(folder) == {**after_write, LOG_FILE: (folder / LOG_FILE).read_bytes()}
    assert writer_for(folder, embedder, sandbox).submit(new, ORIGIN).resumed
    assert len(read_log(folder)) == 1


def test_a_dry_run_decides_like_a_real_run_on_a_repeated_candidate(tmp_path, embedder, sandbox):
    polygons = candidate("geometry/polygon_angle_sums.yaml")
    twice = [polygons, polygons.model_copy(update={"id": "geometry.polygons.angle_sums_again"})]
    dry = writer_for(make_library(tmp_path / "dry"), embedder, sandbox, dry_run=True)
    real = writer_for(make_library(tmp_path / "real"), embedder, sandbox)

    dry_outcomes = [dry.submit(c, ORIGIN).outcome for c in twice]
    real_outcomes = [real.submit(c, ORIGIN).outcome for c in twice]

    assert dry_outcomes == real_outcomes


# --- the index ------------------------------------------------------------------------


def test_the_writer_keeps_a_real_chroma_index_in_step_with_the_folder(
    folder, tmp_path, embedder, sandbox
):
    store = chroma_store(tmp_path / "chroma", embedder)
    writer = LibraryWriter(Admission.load(folder, embedder), sandbox, store=store)

    added = writer.submit(candidate("geometry/polygon_angle_sums.yaml"), ORIGIN)

    assert added.outcome == "added"
    assert store.get(POLYGONS) == added.template
    assert store.count() == len(LIBRARY_FILES) + 1
    assert all(store.get(t.id) == t for t in load_library(folder))
    assert store.library_fingerprint == library_fingerprint(folder)
    assert sync_index(store, folder) is None

    merged = writer.submit(vieta_with(NEW_CUE, NEW_PITFALL), ORIGIN)

    assert merged.outcome == "merged"
    assert store.get(VIETA) == merged.template and merged.template.version == 2
    assert store.library_fingerprint == library_fingerprint(folder)
    assert sync_index(store, folder) is None

    euclid_path = folder / "number_theory" / "euclidean_algorithm.yaml"
    data = yaml.safe_load(euclid_path.read_text())
    data["description"] += " Edited by hand."
    euclid_path.write_text(yaml.safe_dump(data, sort_keys=False))

    report = sync_index(store, folder)

    assert report is not None
    assert (report.added, report.updated, report.removed) == ((), (EUCLID,), ())
    assert report.unchanged == len(LIBRARY_FILES)
    edited = store.get(EUCLID)
    assert edited is not None and edited.description.endswith("Edited by hand.")
    assert store.library_fingerprint == library_fingerprint(folder)
    assert sync_index(store, folder) is None


# --- files on disk --------------------------------------------------------------------


def test_history_and_unfinished_writes_are_not_templates(folder, sandbox):
    fingerprint = library_fingerprint(folder)
    vieta_text = (folder / "algebra" / "vieta_sum_product.yaml").read_text()
    # A copy of Vieta (a duplicate id, were it read) and a broken file, in each hidden place.
    (folder / "algebra" / ".new-1234-vieta_sum_product.yaml").write_text(vieta_text)
    (folder / "algebra" / ".new-x.yaml").write_text("id: [unfinished")
    (folder / HISTORY_DIR / VIETA).mkdir(parents=True)
    (folder / HISTORY_DIR / VIETA / "v1.yaml").write_text(vieta_text)
    (folder / HISTORY_DIR / "broken").mkdir()
    (folder / HISTORY_DIR / "broken" / "v1.yaml").write_text("id: [unfinished")

    files = template_files(folder)
    report = validate_library(folder, sandbox=sandbox)

    assert sorted(str(p.relative_to(folder)) for p in files) == sorted(LIBRARY_FILES)
    assert report.ok, report.issues
    assert len(report.templates) == len(LIBRARY_FILES)
    assert library_fingerprint(folder) == fingerprint


def test_jsonl_log_keeps_a_torn_line_unless_repairing(tmp_path):
    path = tmp_path / "log.jsonl"
    good = json.dumps({"n": 1}) + "\n" + json.dumps({"n": 2}) + "\n"
    path.write_text(good + '{"n": 3, "te')
    log = JsonlLog(path)

    assert log.read(repair=False) == [{"n": 1}, {"n": 2}]
    assert path.read_text() == good + '{"n": 3, "te'

    assert log.read() == [{"n": 1}, {"n": 2}]
    assert path.read_text() == good

    log.append({"n": 4})
    assert log.read() == [{"n": 1}, {"n": 2}, {"n": 4}]


def test_a_change_logged_after_a_torn_log_line_is_still_read(folder, embedder, sandbox):
    log = folder / LOG_FILE
    log.write_text('{"action": "added", "id": "geometry.polygons.pol')  # a kill mid-append
    writer = writer_for(folder, embedder, sandbox)
    new = candidate("geometry/polygon_angle_sums.yaml")

    decision = writer.submit(new, ORIGIN)

    assert decision.outcome == "added"
    assert [(e.action, e.id) for e in read_log(folder)] == [("added", POLYGONS)]
    # And so a rerun resumes instead of judging the candidate again.
    assert writer_for(folder, embedder, sandbox).submit(new, ORIGIN).resumed

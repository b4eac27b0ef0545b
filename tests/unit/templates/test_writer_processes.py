"""`LibraryWriter` across OS processes: several writers on one library and one Chroma
folder at once, and a writer killed between writing a template and indexing it.

Each child is a fresh interpreter running `CHILD_SCRIPT` (written to `tmp_path`) with its
own `Admission`, `LibraryWriter` and `ChromaTemplateStore` over the same folders. The
children embed with `DigestEmbedder` (equal texts, equal vectors; different texts,
nearly orthogonal ones) and check examples with a sandbox that accepts every `check`:
loading the real model and a sympy worker in every child would take longer than the
test, and neither is under test here. The parent checks the result with the real
sandbox.
"""

from __future__ import annotations

import json
import os
import runpy
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import chromadb
import pytest
from chromadb.api.shared_system_client import SharedSystemClient
from chromadb.config import Settings as ChromaSettings

from flux_agent.config import Settings, StoreSettings
from flux_agent.factory import catch_up_index
from flux_agent.templates import default_library_path, load_library, validate_library
from flux_agent.templates.chroma_store import ChromaTemplateStore, open_store
from flux_agent.templates.journal import library_fingerprint, read_log, sync_index
from flux_agent.templates.library import parse_template_file, template_files
from flux_agent.templates.model import ThoughtTemplate

SHIPPED = default_library_path()
LIBRARY_FILES = (
    "algebra/vieta_sum_product.yaml",
    "algebra/vertex_extreme_value.yaml",
    "counting_probability/circular_seating.yaml",
    "number_theory/euclidean_algorithm.yaml",
)
SHARED = (
    "geometry/polygon_angle_sums.yaml",
    "number_theory/last_digit_power_cycles.yaml",
    "counting_probability/derangement_count.yaml",
)
UNIQUE = (
    "algebra/difference_of_squares.yaml",
    "geometry/distance_via_pythagoras.yaml",
    "number_theory/base_conversion.yaml",
    "geometry/arc_length_sector_area.yaml",
)
ORDERS = ((0, 1, 2), (0, 2, 1), (1, 0, 2), (1, 2, 0))
"""Each process's order of SHARED: all different, and pairs start on the same one."""
START_TIMEOUT_S = 180.0

CHILD_SCRIPT = '''
"""A writer in its own process: `python child.py CONFIG.json`."""

import hashlib
import json
import os
import signal
import sys
import time
from pathlib import Path

import numpy as np


class DigestEmbedder:
    """Equal texts get equal vectors, different texts nearly orthogonal ones."""

    name = "test-digest"

    def embed(self, texts):
        vectors = []
        for text in texts:
            seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")
            vector = np.random.default_rng(seed).standard_normal(256)
            vectors.append((vector / np.linalg.norm(vector)).tolist())
        return vectors


class AcceptingSandbox:
    """Every `check` passes (the gate's rules are tested elsewhere)."""

    def evaluate(self, expression, timeout_s=None):
        from flux_agent.verify.sandbox import Evaluation

        return Evaluation(text=expression, latex=expression)

    def equivalent(self, candidate, reference, timeout_s=None):
        return True


class KilledWhileIndexing:
    """A store whose process dies as the writer indexes a template it has just written."""

    def __init__(self, store):
        self._store = store

    @property
    def library_fingerprint(self):
        return self._store.library_fingerprint

    def mark_library(self, fingerprint):
        self._store.mark_library(fingerprint)

    def index(self, templates, *, prune=True):
        if not prune:  # the writer's own update, after the YAML and the log line
            os.kill(os.getpid(), signal.SIGKILL)
        return self._store.index(templates, prune=prune)


def main(config_path):
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    from flux_agent.templates.admission import Admission
    from flux_agent.templates.chroma_store import ChromaTemplateStore
    from flux_agent.templates.model import ThoughtTemplate
    from flux_agent.templates.writer import LibraryWriter, Origin

    config = json.loads(Path(config_path).read_text())
    embedder = DigestEmbedder()
    store = None
    if config.get("chroma"):
        client = chromadb.PersistentClient(
            path=config["chroma"], settings=ChromaSettings(anonymized_telemetry=False)
        )
        store = ChromaTemplateStore(client, embedder)
    mode = config["mode"]
    if mode == "kill-while-indexing":
        store = KilledWhileIndexing(store)
    elif mode == "kill-while-writing":
        # Die after the template's temporary file is written, before it gets its name.
        os.link = lambda *args, **kwargs: os.kill(os.getpid(), signal.SIGKILL)
    writer = LibraryWriter(
        Admission.load(Path(config["folder"]), embedder), AcceptingSandbox(), store=store
    )
    candidates = [ThoughtTemplate.model_validate(c) for c in config["candidates"]]
    if config.get("ready"):
        Path(config["ready"]).touch()
        deadline = time.monotonic() + config["timeout"]
        while not Path(config["go"]).exists():
            if time.monotonic() > deadline:
                sys.exit("never told to go")
            time.sleep(0.005)
    results = []
    for candidate in candidates:
        origin = Origin(by="grow", source=config["source"], record=candidate.provenance.record)
        decision = writer.submit(candidate, origin)
        results.append(
            {
                "candidate": candidate.id,
                "outcome": decision.outcome,
                "resumed": decision.resumed,
                "id": decision.template.id if decision.template else None,
                "fields": [r.field for r in decision.rejections],
                "reason": decision.reason,
            }
        )
    Path(config["results"]).write_text(json.dumps(results))


if __name__ == "__main__":
    main(sys.argv[1])
'''


def shipped(relative: str) -> ThoughtTemplate:
    template, issues = parse_template_file(SHIPPED / relative)
    assert template is not None, issues
    return template


def candidate_json(relative: str, source: str, day: int) -> dict[str, Any]:
    """A shipped template as an extraction from `source` would give it (its provenance
    differs between submitters; what it says does not)."""
    data = shipped(relative).model_dump(mode="json")
    data["provenance"] = {
        "kind": "extracted",
        "source": source,
        "date": f"2026-12-{day:02d}",
        "record": f"{source}#{relative}",
    }
    return data


def make_library(folder: Path) -> Path:
    for relative in LIBRARY_FILES:
        (folder / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(SHIPPED / relative, folder / relative)
    shutil.copy(SHIPPED / "tags.yaml", folder / "tags.yaml")
    return folder


def open_chroma(path: Path, embedder: Any) -> ChromaTemplateStore:
    # Chroma shares one in-process system per path; drop it, so this reads what the
    # children wrote to disk rather than what this process cached.
    SharedSystemClient.clear_system_cache()
    client = chromadb.PersistentClient(
        path=str(path), settings=ChromaSettings(anonymized_telemetry=False)
    )
    return ChromaTemplateStore(client, embedder)


@pytest.fixture(scope="module")
def child_script(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("child") / "child.py"
    path.write_text(CHILD_SCRIPT)
    return path


@pytest.fixture(scope="module")
def digest_embedder(child_script: Path) -> Any:
    """The children's embedder, for the parent to open the same index with."""
    return runpy.run_path(str(child_script))["DigestEmbedder"]()


@pytest.fixture
def library(tmp_path: Path) -> Path:
    return make_library(tmp_path / "library")


@pytest.fixture
def chroma(tmp_path: Path, library: Path, digest_embedder: Any) -> Path:
    """A Chroma folder indexing the library, as `flux library build` leaves it."""
    path = tmp_path / "chroma"
    store = open_chroma(path, digest_embedder)
    store.index(load_library(library))
    store.mark_library(library_fingerprint(library))
    SharedSystemClient.clear_system_cache()
    return path


def start_child(
    script: Path, tmp_path: Path, name: str, **config: Any
) -> tuple[subprocess.Popen[bytes], Path]:
    config_path = tmp_path / f"{name}.json"
    config_path.write_text(json.dumps({"results": str(tmp_path / f"{name}.out.json"), **config}))
    log = (tmp_path / f"{name}.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, str(script), str(config_path)],
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=Path(__file__).resolve().parents[3],
    )
    log.close()
    return process, tmp_path / f"{name}.log"


def assert_index_holds_the_library(store: ChromaTemplateStore, folder: Path) -> None:
    templates = load_library(folder)
    assert store.count() == len(templates)
    for template in templates:
        assert store.get(template.id) == template
        (hit,) = store.search(template.search_text(), k=1)
        assert hit.template.id == template.id
    assert store.library_fingerprint == library_fingerprint(folder)


def test_concurrent_writers_add_each_template_once(
    tmp_path, child_script, library, chroma, digest_embedder, sandbox
):
    names = [f"writer{n}" for n in range(4)]
    processes = []
    for n, name in enumerate(names):
        # The shared candidates in a different order in each process, then its own one.
        order = [SHARED[i] for i in ORDERS[n]]
        candidates = [candidate_json(r, f"runs-{name}", n + 1) for r in [*order, UNIQUE[n]]]
        processes.append(
            start_child(
                child_script,
                tmp_path,
                name,
                mode="write",
                folder=str(library),
                chroma=str(chroma),
                candidates=candidates,
                source=f"runs-{name}",
                ready=str(tmp_path / f"{name}.ready"),
                go=str(tmp_path / "go"),
                timeout=START_TIMEOUT_S,
            )
        )
    deadline = time.monotonic() + START_TIMEOUT_S
    while not all((tmp_path / f"{name}.ready").exists() for name in names):
        for process, log in processes:
            assert process.poll() is None, log.read_text()
        assert time.monotonic() < deadline, "the writers did not start"
        time.sleep(0.05)
    (tmp_path / "go").touch()  # all at once
    for process, log in processes:
        assert process.wait(timeout=START_TIMEOUT_S) == 0, log.read_text()

    decisions = [
        d for name in names for d in json.loads((tmp_path / f"{name}.out.json").read_text())
    ]
    new_ids = sorted(shipped(r).id for r in (*SHARED, *UNIQUE))
    for relative in SHARED:
        mine = [d for d in decisions if d["candidate"] == shipped(relative).id]
        assert len(mine) == len(names)
        firsts = [d for d in mine if d["outcome"] == "added" and not d["resumed"]]
        assert len(firsts) == 1, mine
        for later in mine:
            if later is firsts[0]:
                continue
            # Seen as done already, or as a near-duplicate: never written again.
            assert later["resumed"] or later["fields"] == ["technique"], later
            assert later["id"] in {firsts[0]["id"], None}, later
    assert all(d["outcome"] != "merged" for d in decisions)
    assert not any((d["id"] or "").endswith("_2") for d in decisions)

    files = sorted(str(p.relative_to(library)) for p in template_files(library))
    assert files == sorted([*LIBRARY_FILES, *SHARED, *UNIQUE])
    assert sorted(t.id for t in load_library(library)) == sorted(
        [*(shipped(r).id for r in LIBRARY_FILES), *new_ids]
    )
    log = read_log(library)
    assert [e.action for e in log] == ["added"] * len(new_ids)
    assert sorted(e.id for e in log) == new_ids
    assert not list(library.rglob(".new-*"))
    report = validate_library(library, sandbox=sandbox, embedder=digest_embedder)
    assert report.ok, report.issues

    store = open_chroma(chroma, digest_embedder)
    sync_index(store, library)
    assert_index_holds_the_library(store, library)


def test_a_writer_killed_before_indexing_is_caught_up_at_the_next_start(
    tmp_path, child_script, library, chroma, digest_embedder, sandbox
):
    new = shipped("geometry/polygon_angle_sums.yaml")
    process, log = start_child(
        child_script,
        tmp_path,
        "killed",
        mode="kill-while-indexing",
        folder=str(library),
        chroma=str(chroma),
        candidates=[candidate_json("geometry/polygon_angle_sums.yaml", "runs", 1)],
        source="runs",
    )

    assert process.wait(timeout=START_TIMEOUT_S) == -9, log.read_text()

    # The folder is complete: the template written and logged, no partial file left.
    path = library / "geometry" / "polygon_angle_sums.yaml"
    assert path.exists()
    assert new.id in [t.id for t in load_library(library)]
    assert [(e.action, e.id) for e in read_log(library)] == [("added", new.id)]
    assert not list(library.rglob(".new-*"))
    assert validate_library(library, sandbox=sandbox).ok
    # The index is behind.
    behind = open_chroma(chroma, digest_embedder)
    assert behind.get(new.id) is None
    assert behind.count() == len(LIBRARY_FILES)
    assert behind.library_fingerprint != library_fingerprint(library)

    # The next start.
    settings = Settings(
        data_dir=tmp_path / "data", library_path=library, store=StoreSettings(path=chroma)
    )
    SharedSystemClient.clear_system_cache()
    store = open_store(settings, embedder=digest_embedder)
    catch_up_index(settings, store)

    written = store.get(new.id)
    assert written is not None and written.id == new.id
    assert_index_holds_the_library(store, library)
    assert sync_index(store, library) is None


def test_a_writer_killed_while_writing_leaves_no_template_and_no_log_line(
    tmp_path, child_script, library, chroma, digest_embedder, sandbox
):
    before = {str(p.relative_to(library)): p.read_bytes() for p in template_files(library)}
    fingerprint = library_fingerprint(library)
    process, log = start_child(
        child_script,
        tmp_path,
        "killed",
        mode="kill-while-writing",
        folder=str(library),
        chroma=str(chroma),
        candidates=[candidate_json("geometry/polygon_angle_sums.yaml", "runs", 1)],
        source="runs",
    )

    assert process.wait(timeout=START_TIMEOUT_S) == -9, log.read_text()

    # Only the hidden temporary file is left, and nothing reads it as a template.
    leftovers = list(library.rglob(".new-*"))
    assert [p.parent.name for p in leftovers] == ["geometry"]
    assert not (library / "geometry" / "polygon_angle_sums.yaml").exists()
    after = {str(p.relative_to(library)): p.read_bytes() for p in template_files(library)}
    assert after == before
    assert library_fingerprint(library) == fingerprint
    assert read_log(library) == []
    assert validate_library(library, sandbox=sandbox).ok
    store = open_chroma(chroma, digest_embedder)
    assert sync_index(store, library) is None
    assert_index_holds_the_library(store, library)


def test_the_children_die_by_sigkill_not_by_an_error(tmp_path, child_script, library):
    """Guards the two tests above: without the kill, the same child exits cleanly."""
    process, log = start_child(
        child_script,
        tmp_path,
        "clean",
        mode="write",
        folder=str(library),
        chroma=None,
        candidates=[candidate_json("geometry/polygon_angle_sums.yaml", "runs", 1)],
        source="runs",
    )

    assert process.wait(timeout=START_TIMEOUT_S) == 0, log.read_text()
    (decision,) = json.loads((tmp_path / "clean.out.json").read_text())
    assert decision["outcome"] == "added" and not decision["resumed"]
    assert os.path.exists(library / "geometry" / "polygon_angle_sums.yaml")

"""`flux library grow` on the embedded model: three solved problems, a copy of a small
library, a real Chroma index. Whatever the tiny model writes, the pass must finish, every
template it gets in must be valid, the index must agree with the folder, and every
rejection must be written down with its reason."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from flux_agent.config import Settings
from flux_agent.growth.extract import DEFAULT_PROMPT
from flux_agent.storage import JsonlLog
from flux_agent.templates import validate_library
from flux_agent.templates.chroma_store import open_store
from flux_agent.templates.embeddings import load_embedder
from flux_agent.templates.journal import library_fingerprint, read_log
from flux_agent.templates.library import parse_template_file, template_files
from tests.unit.growth.conftest import copy_small_library

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PROBLEMS = [
    {
        "problem": "What is 7 + 5?",
        "solution": "Adding the ones gives 7 + 5 = 12, so the answer is $\\boxed{12}$.",
        "answer": "12",
    },
    {
        "problem": "Solve for x: 2x + 3 = 11.",
        "solution": "Subtract 3 from both sides: 2x = 8. Divide both sides by 2: x = 4. "
        "So $x = \\boxed{4}$.",
        "answer": "4",
    },
    {
        "problem": "What is the sum of the roots of x^2 - 5x + 6 = 0?",
        "solution": "By Vieta's formulas the sum of the roots is $-b/a = 5$, "
        "so the answer is $\\boxed{5}$.",
        "answer": "5",
    },
]
MAX_TOKENS = "700"
"""Enough for SmolLM2 to finish a template now and then; at most 6 replies (3 problems, each
retried once) of 700 tokens: 2 to 3.5 minutes on one core."""
MODEL = "SmolLM2-135M-Instruct (embedded)"
TABLE_ROW = re.compile(r"│ 3 +│ (\d+) +│ (\d+) +│ (\d+) +│ (\d+) +│ (\d+) +│")


def flux(*args: str, data_dir: Path, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "FLUX_DATA_DIR": str(data_dir), "COLUMNS": "200"}
    command = [sys.executable, "-m", "flux_agent.cli", *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=timeout)


def test_grow_on_the_embedded_model_keeps_the_library_valid(tmp_path, sandbox):
    dataset = tmp_path / "three.jsonl"
    dataset.write_text("".join(json.dumps(p) + "\n" for p in PROBLEMS))
    library = copy_small_library(tmp_path / "library")
    before = set(template_files(library))
    data = tmp_path / "data"

    start = time.perf_counter()
    done = flux(
        "library", "grow", str(dataset), "--library", str(library), "--data-dir", str(data),
        "--max-tokens", MAX_TOKENS, data_dir=data,
    )  # fmt: skip
    seconds = time.perf_counter() - start

    assert done.returncode == 0, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    out = done.stdout
    print(f"flux library grow: {seconds:.0f} s\n{out}")
    assert f"growing {library} (5 templates) from 3 problems" in out
    assert re.search(r"3/3 +\d+ added +\d+ merged +\d+ rejected", out)  # the progress line
    row = TABLE_ROW.search(out)
    assert row, out
    candidates, added, merged, rejected, failed = map(int, row.groups())
    assert added + merged + rejected == candidates
    assert "tokens generated in" in out

    # Every reply is on disk, and every rejection with its reasons.
    (work,) = (data / "growth").iterdir()
    extractions = JsonlLog(work / "extractions.jsonl").read()
    assert [row["key"].split("\0")[1] for row in extractions] == [
        "three.jsonl:1",
        "three.jsonl:2",
        "three.jsonl:3",
    ]
    assert all(row["raw"] and row["model"] == MODEL for row in extractions)
    if rejected + failed:
        assert (work / "rejected.jsonl").is_file()
    reasons = JsonlLog(work / "rejected.jsonl").read()
    assert len(reasons) == rejected + failed
    for line in reasons:
        assert line["source"] == "three.jsonl" and line["record"].startswith("three.jsonl:")
        assert line["reasons"] and all(isinstance(r, str) and r for r in line["reasons"])
    assert sum(line["candidate"] is None for line in reasons) == failed

    # What got in is valid, logged with its provenance, and indexed.
    report = validate_library(library, check_examples=True, sandbox=sandbox)
    assert report.ok, "\n".join(map(str, report.issues))
    entries = read_log(library)
    assert len(entries) == added + merged
    assert len(set(template_files(library)) - before) == added
    for entry in entries:
        assert (entry.by, entry.source, entry.model) == ("grow", "three.jsonl", MODEL)
        assert entry.prompt_version == DEFAULT_PROMPT
        template, issues = parse_template_file(library / entry.path)
        assert not issues and template.version == entry.version
        if entry.action == "added":
            assert template.provenance.kind == "extracted"
            assert template.provenance.record == entry.record
    if entries:
        store = open_store(Settings(data_dir=data, library_path=library), load_embedder(None))
        assert store.library_fingerprint == library_fingerprint(library)
        for entry in entries:
            assert store.get(entry.id).version == entry.version
    else:
        assert set(template_files(library)) == before

"""Near-duplicate detection over technique texts, and pairs marked distinct with a reason."""

from __future__ import annotations

import math
from pathlib import Path

import yaml

from flux_agent.templates import default_library_path, validate_library
from flux_agent.templates.duplicates import (
    closest_pairs,
    load_distinct_pairs,
    near_duplicates,
    technique_text,
)

VIETA = default_library_path() / "algebra" / "vieta_sum_product.yaml"


class WordEmbedder:
    """Unit bag-of-words vectors over a fixed vocabulary: close texts get close vectors."""

    name = "test-words"

    def embed(self, texts):
        vocabulary = sorted({w for t in texts for w in t.lower().split()})
        vectors = []
        for text in texts:
            words = text.lower().split()
            vector = [float(words.count(w)) for w in vocabulary]
            norm = math.sqrt(sum(v * v for v in vector)) or 1.0
            vectors.append([v / norm for v in vector])
        return vectors


def _write(folder: Path, name: str, mutate) -> None:
    data = yaml.safe_load(VIETA.read_text())
    mutate(data)
    (folder / "algebra").mkdir(parents=True, exist_ok=True)
    (folder / "algebra" / f"{name}.yaml").write_text(yaml.safe_dump(data, sort_keys=False))


def _twin(slug: str, **changes):
    def mutate(data):
        data["id"] = f"algebra.quadratics.{slug}"
        data.update(changes)

    return mutate


def test_technique_text_leaves_out_the_example(library):
    template = library[0]
    text = technique_text(template)
    assert template.steps[0] in text and template.example.problem not in text


def test_closest_pairs_rank_a_copy_first(library):
    twin = library[0].model_copy(update={"id": "algebra.copy.twin"})
    pairs = closest_pairs([*library[:5], twin], WordEmbedder(), limit=3)
    assert {pairs[0].first, pairs[0].second} == {library[0].id, "algebra.copy.twin"}
    assert pairs[0].similarity > 0.999 and pairs[0].similarity >= pairs[1].similarity


def test_a_near_duplicate_fails_validation_until_marked_distinct(tmp_path, sandbox):
    _write(tmp_path, "vieta_sum_product", lambda d: None)
    _write(tmp_path, "vieta_again", _twin("vieta_again", name="Vieta again, sum and product"))
    report = validate_library(tmp_path, sandbox=sandbox, embedder=WordEmbedder())
    (issue,) = [i for i in report.issues if i.field == "near-duplicate"]
    # Reported on one file of the pair, naming the other.
    assert issue.path.name == "vieta_sum_product.yaml"
    assert "too close to algebra.quadratics.vieta_again" in issue.message

    (tmp_path / "distinct.yaml").write_text(
        yaml.safe_dump(
            [
                {
                    "pair": [
                        "algebra.quadratics.vieta_again",
                        "algebra.quadratics.vieta_sum_product",
                    ],
                    "reason": "kept apart on purpose for this test",
                }
            ]
        )
    )
    report = validate_library(tmp_path, sandbox=sandbox, embedder=WordEmbedder())
    assert report.ok, report.issues


def test_a_lower_threshold_catches_more(library):
    distinct: dict = {}
    strict = near_duplicates(library, WordEmbedder(), distinct, threshold=0.3)
    loose = near_duplicates(library, WordEmbedder(), distinct, threshold=0.99)
    assert len(strict) > len(loose) == 0


def test_distinct_file_problems_are_reported(tmp_path, sandbox):
    (tmp_path / "distinct.yaml").write_text(
        yaml.safe_dump(
            [
                {"pair": ["a.b.c"], "reason": "only one id given here"},
                {"pair": ["a.b.c", "a.b.d"], "reason": "short"},
                {"pair": ["algebra.x.y", "algebra.x.z"], "reason": "ids that do not exist"},
            ]
        )
    )
    marked, problems = load_distinct_pairs(tmp_path)
    assert len(problems) == 2 and len(marked) == 1
    _write(tmp_path, "vieta_sum_product", lambda d: None)
    report = validate_library(tmp_path, sandbox=sandbox, embedder=WordEmbedder())
    messages = [i.message for i in report.issues if i.path.name == "distinct.yaml"]
    assert any("unknown ids: algebra.x.y, algebra.x.z" in m for m in messages)
    assert any("two different template ids" in m for m in messages)
    assert any("why the two differ" in m for m in messages)

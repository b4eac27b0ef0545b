"""Does retrieval find templates of the right subject? Measured on MATH-style problems.

For a seeded sample of problems from a MATH-style JSONL file (fields `problem`
and `subject`), index the template library in a temporary Chroma store with the
real embedding model, search each problem, and report how often a template of
the problem's subject is among the top k, with the worst misses.

    python benchmarks/retrieval_by_subject.py --data ../shared/data/math_train.jsonl \
        --subjects "Prealgebra,Algebra,Intermediate Algebra" --n 30 --k 5
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
from pathlib import Path

from flux_agent.config import Settings
from flux_agent.factory import build_index
from flux_agent.templates.chroma_store import open_store

DOMAIN_OF_SUBJECT = {
    "Prealgebra": "prealgebra",
    "Algebra": "algebra",
    "Intermediate Algebra": "intermediate_algebra",
    "Number Theory": "number_theory",
    "Counting & Probability": "counting_probability",
    "Geometry": "geometry",
    "Precalculus": "precalculus",
}


def sample(path: Path, subjects: list[str], n: int, seed: int) -> list[dict]:
    """`n` problems spread evenly over `subjects`, chosen with a fixed seed."""
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    rng = random.Random(seed)
    chosen: list[dict] = []
    for position, subject in enumerate(subjects):
        pool = [r for r in records if r.get("subject") == subject]
        if not pool:
            raise SystemExit(f"no problems with subject {subject!r} in {path}")
        share = n // len(subjects) + (1 if position < n % len(subjects) else 0)
        chosen += rng.sample(pool, share)
    return chosen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="MATH-style JSONL file")
    parser.add_argument("--subjects", default="Prealgebra,Algebra,Intermediate Algebra")
    parser.add_argument("--n", type=int, default=30, help="problems to sample")
    parser.add_argument("--k", type=int, default=5, help="templates retrieved per problem")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--misses", type=int, default=3, help="worst misses to print")
    args = parser.parse_args()
    subjects = [s.strip() for s in args.subjects.split(",")]
    unknown = [s for s in subjects if s not in DOMAIN_OF_SUBJECT]
    if unknown:
        raise SystemExit(f"unknown subject(s): {unknown}; known: {list(DOMAIN_OF_SUBJECT)}")

    problems = sample(args.data, subjects, args.n, args.seed)
    with tempfile.TemporaryDirectory() as folder:
        settings = Settings(data_dir=Path(folder))
        store = open_store(settings)
        built = build_index(settings, store)
        print(f"indexed {built.total} templates in {built.seconds:.1f} s")
        rows = []
        for record in problems:
            hits = store.search(record["problem"], k=args.k)
            domain = DOMAIN_OF_SUBJECT[record["subject"]]
            ranks = [i for i, hit in enumerate(hits, 1) if hit.template.domain == domain]
            rows.append((record, hits, ranks[0] if ranks else None))

    for subject in subjects:
        mine = [r for r in rows if r[0]["subject"] == subject]
        found = sum(1 for r in mine if r[2] is not None)
        first = sum(1 for r in mine if r[2] == 1)
        print(
            f"{subject}: right subject in top {args.k}: {found}/{len(mine)}, at rank 1: "
            f"{first}/{len(mine)}"
        )
    found = sum(1 for r in rows if r[2] is not None)
    first = sum(1 for r in rows if r[2] == 1)
    print(
        f"all: right subject in top {args.k}: {found}/{len(rows)} ({found / len(rows):.0%}), "
        f"at rank 1: {first}/{len(rows)} ({first / len(rows):.0%})"
    )

    worst = sorted(rows, key=lambda r: (r[2] is not None, -(r[2] or 0), r[1][0].score))
    print("\nworst misses (right subject ranked lowest or absent):")
    for record, hits, rank in worst[: args.misses]:
        print(
            f"- [{record['subject']}] rank of right subject: {rank or 'not in top ' + str(args.k)}"
        )
        print(f"  problem: {record['problem'][:220]!r}")
        for hit in hits[:3]:
            print(f"  {hit.score:.3f} {hit.template.id}")


if __name__ == "__main__":
    main()

"""The shipped library against the real embedding model: no near-duplicates, and a
paraphrased copy of a template is caught."""

from __future__ import annotations

import shutil

import pytest
import yaml

from flux_agent.templates import default_library_path, validate_library
from flux_agent.templates.embeddings import load_embedder

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def embedder():
    return load_embedder(None)


def test_shipped_library_has_no_unmarked_near_duplicates(embedder, sandbox):
    report = validate_library(default_library_path(), sandbox=sandbox, embedder=embedder)
    assert report.ok, "\n".join(map(str, report.issues))


def test_a_paraphrased_template_is_caught(tmp_path, embedder, sandbox):
    library = tmp_path / "lib"
    shutil.copytree(default_library_path(), library)
    source = library / "algebra" / "vieta_sum_product.yaml"
    data = yaml.safe_load(source.read_text())
    data.update(
        id="algebra.quadratics.root_sum_product_again",
        name="Using root sum and root product instead of solving",
        description="The roots of ax^2+bx+c=0 add up to -b/a and multiply to c/a, so any "
        "symmetric combination of the roots can be computed from the coefficients without "
        "solving the quadratic.",
        applies_when=[
            "We need r+s, rs or something symmetric like r^2+s^2 for the roots of a quadratic.",
            "Finding the roots explicitly would be messy (irrational or complex roots).",
        ],
        steps=[
            "Move everything to one side and identify a, b, c.",
            "Write r+s=-b/a and rs=c/a.",
            "Express the target in terms of r+s and rs.",
            "Plug in and simplify.",
        ],
    )
    (library / "algebra" / "root_sum_product_again.yaml").write_text(yaml.safe_dump(data))
    report = validate_library(library, sandbox=sandbox, embedder=embedder, check_examples=False)
    flagged = [i for i in report.issues if i.field == "near-duplicate"]
    assert len(flagged) == 1
    assert "vieta_sum_product" in str(flagged[0]) and "root_sum_product_again" in str(flagged[0])

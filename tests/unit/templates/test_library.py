"""Library validation: the shipped library passes, and every rule can fail with file and field."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from flux_agent.templates import (
    LibraryError,
    ThoughtTemplate,
    default_library_path,
    load_library,
    validate_library,
)
from flux_agent.templates.library import template_files

VIETA = default_library_path() / "algebra" / "vieta_sum_product.yaml"


def test_shipped_library_is_valid_with_checked_examples(sandbox):
    report = validate_library(default_library_path(), sandbox=sandbox)
    assert report.ok, "\n".join(map(str, report.issues))
    assert len(report.templates) >= 25
    assert len({t.domain for t in report.templates}) >= 5


def _library(tmp_path: Path, mutate=None, name="vieta_sum_product.yaml", folder="algebra") -> Path:
    data = yaml.safe_load(VIETA.read_text())
    if mutate:
        mutate(data)
    target = tmp_path / "lib" / folder
    target.mkdir(parents=True, exist_ok=True)
    (target / name).write_text(yaml.safe_dump(data, sort_keys=False))
    return tmp_path / "lib"


def _issues(folder: Path, sandbox) -> list[tuple[str, str, str]]:
    report = validate_library(folder, sandbox=sandbox)
    return [(issue.path.name, issue.field, issue.message) for issue in report.issues]


def test_a_clean_copy_passes(tmp_path, sandbox):
    assert _issues(_library(tmp_path), sandbox) == []


@pytest.mark.parametrize(
    ("mutate", "field", "message"),
    [
        (lambda d: d.pop("steps"), "steps", "Field required"),
        (lambda d: d.update(steps=["Do it.", "Then more."]), "steps", "at least 3"),
        (lambda d: d.update(applies_when=["always"]), "applies_when", "at least 2"),
        (lambda d: d.update(id="Algebra-Vieta"), "id", "domain.topic.name"),
        (lambda d: d.update(domain="astrology"), "domain", "unknown domain"),
        (lambda d: d.update(tags=["Has Spaces"]), "tags", "lowercase"),
        (lambda d: d.update(surprise="field"), "surprise", "Extra inputs"),
        (lambda d: d["example"].pop("answer"), "example.answer", "Field required"),
        (lambda d: d.update(check="(6/2)**2 - 2*Rational(1, 2) + 1"), "check", "evaluates to 9"),
        (lambda d: d.update(check="__import__('os')"), "check", "not allowed"),
        (lambda d: d.update(check="1 +"), "check", "does not evaluate"),
        (lambda d: d.update(check="(5, 5, 5)"), "check", "several values"),
        (lambda d: d["example"].update(answer="5\ncheck: 5"), "example.answer", "one line"),
        (
            lambda d: d.update(pitfalls=["Forgetting the sign.", "forgetting the sign. "]),
            "pitfalls",
            "items must differ",
        ),
        (
            lambda d: d.update(description="The sum of the roots of a quadratic is -b/a, so the"),
            "description",
            "cut off",
        ),
    ],
)
def test_each_rule_reports_file_and_field(tmp_path, sandbox, mutate, field, message):
    issues = _issues(_library(tmp_path, mutate), sandbox)
    assert any(
        name == "vieta_sum_product.yaml" and f == field and message in m for name, f, m in issues
    ), issues


def test_placement_and_duplicates(tmp_path, sandbox):
    folder = _library(tmp_path, name="wrong_name.yaml")
    _library(tmp_path, folder="geometry")
    issues = _issues(folder, sandbox)
    assert ("wrong_name.yaml", "id", "file name must be vieta_sum_product.yaml") in issues
    assert any(f == "domain" and "algebra/" in m for _, f, m in issues)
    assert any(f == "id" and "duplicate id" in m for _, f, m in issues)


def test_unreadable_yaml_and_empty_folder(tmp_path, sandbox):
    folder = tmp_path / "lib" / "algebra"
    folder.mkdir(parents=True)
    assert _issues(tmp_path / "lib", sandbox)[0][2].startswith("no template files")
    (folder / "broken.yaml").write_text("id: [unclosed\n")
    assert _issues(tmp_path / "lib", sandbox)[0][1] == "<file>"


def test_load_library_raises_with_every_issue(tmp_path):
    folder = _library(tmp_path, lambda d: d.update(domain="astrology", steps=[]))
    with pytest.raises(LibraryError) as caught:
        load_library(folder)
    fields = {issue.field for issue in caught.value.issues}
    assert {"domain", "steps"} <= fields


def test_template_render_and_search_text_carry_the_fields():
    template = ThoughtTemplate.model_validate(yaml.safe_load(VIETA.read_text()))
    assert "Compute the sum of the roots as -b/a" in template.render()
    assert "Worked example" not in template.render(with_example=False)
    assert template.applies_when[0] in template.search_text()
    changed = template.model_copy(update={"description": template.description + " More."})
    assert changed.content_hash() != template.content_hash()


def test_tags_must_come_from_the_vocabulary(tmp_path, sandbox):
    folder = _library(tmp_path, lambda d: d.update(tags=["quadratics", "made-up-tag"]))
    assert not any(f == "tags" for _, f, _ in _issues(folder, sandbox))  # no vocabulary, no check
    shutil.copy(default_library_path() / "tags.yaml", folder / "tags.yaml")
    issues = _issues(folder, sandbox)
    assert ("vieta_sum_product.yaml", "tags", "not in tags.yaml: made-up-tag") in issues
    (folder / "tags.yaml").write_text("- just\n- a list\n")
    assert any(name == "tags.yaml" and "meaning" in m for name, _, m in _issues(folder, sandbox))


def test_top_level_files_are_not_templates():
    files = [p.name for p in template_files(default_library_path())]
    assert "tags.yaml" not in files and "vieta_sum_product.yaml" in files

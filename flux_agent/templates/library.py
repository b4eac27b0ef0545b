"""Loading and validating the template library: a folder of YAML files, one template each.

`validate_library(folder)` reports every problem it finds with the file and the
field, and never stops at the first one: a contributor fixing templates wants
the whole list. `load_library(folder)` returns the templates or raises
`LibraryError` carrying that same list.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from pydantic import ValidationError

from flux_agent.templates.duplicates import (
    DISTINCT_FILE,
    NEAR_DUPLICATE_THRESHOLD,
    load_distinct_pairs,
    near_duplicates,
)
from flux_agent.templates.embeddings import TextEmbedder
from flux_agent.templates.model import ThoughtTemplate
from flux_agent.verify.sandbox import Sandbox, SandboxError, SandboxTimeout, default_sandbox

CHECK_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class LibraryIssue:
    """One problem in one template file."""

    path: Path
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.field}: {self.message}"


@dataclass
class LibraryReport:
    """The templates that loaded and every issue found on the way."""

    templates: list[ThoughtTemplate] = field(default_factory=list)
    paths: dict[str, Path] = field(default_factory=dict)
    issues: list[LibraryIssue] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.issues


class LibraryError(ValueError):
    """The library has problems; `issues` lists them all."""

    def __init__(self, issues: list[LibraryIssue]) -> None:
        self.issues = issues
        shown = "\n".join(f"  - {issue}" for issue in issues[:20])
        more = f"\n  ... and {len(issues) - 20} more" if len(issues) > 20 else ""
        super().__init__(f"{len(issues)} problem(s) in the template library:\n{shown}{more}")


def default_library_path() -> Path:
    """`template_library/` next to the package (a source checkout or an editable install)."""
    return Path(__file__).resolve().parents[2] / "template_library"


TAGS_FILE = "tags.yaml"
"""The controlled tag vocabulary, at the library's top level: `tag: meaning` lines."""


def template_files(folder: Path) -> list[Path]:
    """Every template file below `folder` (in a domain folder, never at the top), sorted.

    Files at the top level (`tags.yaml`, ...) describe the library; they are not templates.
    Hidden paths are skipped: `.history/` keeps old versions, `.new-*` files are writes
    in progress.
    """
    folder = Path(folder)
    return sorted(
        p
        for p in folder.rglob("*.y*ml")
        if p.suffix in {".yaml", ".yml"}
        and p.parent != folder
        and not any(part.startswith(".") for part in p.relative_to(folder).parts)
        and p.is_file()
    )


def load_tag_vocabulary(folder: Path) -> tuple[dict[str, str] | None, list[LibraryIssue]]:
    """The library's tag vocabulary, or None when it has no `tags.yaml` (no tag check)."""
    path = Path(folder) / TAGS_FILE
    if not path.exists():
        return None, []
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        return None, [LibraryIssue(path, "<file>", f"cannot read the tag vocabulary: {exc}")]
    if not isinstance(data, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and v.strip() for k, v in data.items()
    ):
        return None, [LibraryIssue(path, "<file>", "must map each tag to a one-line meaning")]
    return data, []


def parse_template_file(path: Path) -> tuple[ThoughtTemplate | None, list[LibraryIssue]]:
    """Read and schema-validate one file; returns the template or the issues."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        return None, [LibraryIssue(path, "<file>", f"cannot read: {exc}")]
    except yaml.YAMLError as exc:
        return None, [LibraryIssue(path, "<file>", f"invalid YAML: {exc}")]
    if not isinstance(data, dict):
        return None, [LibraryIssue(path, "<file>", "must hold one mapping (a template)")]
    try:
        return ThoughtTemplate.model_validate(data), []
    except ValidationError as exc:
        return None, [
            LibraryIssue(path, ".".join(str(p) for p in err["loc"]) or "<template>", err["msg"])
            for err in exc.errors()
        ]


def check_example(template: ThoughtTemplate, sandbox: Sandbox | None = None) -> tuple[bool, str]:
    """Evaluate `check` safely and compare it with the example's answer.

    Returns (passed, explanation); explanation names the evaluated value.
    """
    sandbox = sandbox or default_sandbox()
    try:
        value = sandbox.evaluate(template.check, timeout_s=CHECK_TIMEOUT_S)
    except SandboxTimeout:
        return False, f"took longer than {CHECK_TIMEOUT_S:g} s to evaluate"
    except SandboxError as exc:
        return False, f"does not evaluate: {exc}"
    if _several_values(value.text) and not _several_values(template.example.answer):
        return False, f"evaluates to several values ({value.text[:60]}), the answer is one"
    try:
        same = sandbox.equivalent(value.latex, template.example.answer)
    except (SandboxError, SandboxTimeout) as exc:
        return False, f"cannot compare with the answer: {exc}"
    if not same:
        return False, f"evaluates to {value.latex}, but example.answer is {template.example.answer}"
    return True, f"evaluates to {value.latex}"


def _several_values(text: str) -> bool:
    """A tuple or list such as "(1/2, 1/2)" or "1, 2": a comma outside any brackets, or
    the whole text one bracketed sequence."""
    text = text.replace("\\left", "").replace("\\right", "").strip()
    if text[:1] in "([" and text[-1:] in ")]" and "," in text:
        return True
    depth = 0
    for char in text:
        depth += char in "([{"
        depth -= char in ")]}"
        if char == "," and depth == 0:
            return True
    return False


def validate_library(
    folder: Path,
    *,
    check_examples: bool = True,
    sandbox: Sandbox | None = None,
    embedder: TextEmbedder | None = None,
    threshold: float = NEAR_DUPLICATE_THRESHOLD,
) -> LibraryReport:
    """Load every template below `folder` and collect every problem.

    Rules: each file parses and matches the schema; the file sits in the folder of
    its domain and is named after the last part of its id; ids are unique; tags
    come from the vocabulary in `tags.yaml` (when the library has one); and (with
    `check_examples`) each `check` evaluates to the example's answer; and (with an
    `embedder`) no two templates are near-duplicates unless `distinct.yaml` says why.
    """
    report = LibraryReport()
    folder = Path(folder)
    if not folder.is_dir():
        report.issues.append(LibraryIssue(folder, "<library>", "folder does not exist"))
        return report
    vocabulary, vocabulary_issues = load_tag_vocabulary(folder)
    report.issues.extend(vocabulary_issues)
    files = template_files(folder)
    if not files:
        report.issues.append(LibraryIssue(folder, "<library>", "no template files (*.yaml)"))
    for path in files:
        template, issues = parse_template_file(path)
        report.issues.extend(issues)
        if template is None:
            continue
        report.issues.extend(_placement_issues(template, path, folder))
        if vocabulary is not None:
            unknown = [tag for tag in template.tags if tag not in vocabulary]
            if unknown:
                report.issues.append(
                    LibraryIssue(path, "tags", f"not in {TAGS_FILE}: {', '.join(unknown)}")
                )
        if template.id in report.paths:
            other = report.paths[template.id]
            report.issues.append(LibraryIssue(path, "id", f"duplicate id, also in {other}"))
            continue
        if check_examples:
            passed, why = check_example(template, sandbox)
            if not passed:
                report.issues.append(LibraryIssue(path, "check", why))
        report.templates.append(template)
        report.paths[template.id] = path
    if embedder is not None:
        report.issues.extend(_duplicate_issues(report, folder, embedder, threshold))
    return report


def _duplicate_issues(
    report: LibraryReport, folder: Path, embedder: TextEmbedder, threshold: float
) -> list[LibraryIssue]:
    distinct, problems = load_distinct_pairs(folder)
    distinct_path = folder / DISTINCT_FILE
    issues = [LibraryIssue(distinct_path, "<file>", problem) for problem in problems]
    for marked in distinct:
        unknown = sorted(i for i in marked if i not in report.paths)
        if unknown:
            issues.append(LibraryIssue(distinct_path, "pair", f"unknown ids: {', '.join(unknown)}"))
    for pair in near_duplicates(report.templates, embedder, distinct, threshold):
        issues.append(
            LibraryIssue(
                report.paths[pair.second],
                "near-duplicate",
                f"too close to {pair.first} (cosine {pair.similarity:.3f} >= {threshold}); "
                f"merge them, or list the pair in {DISTINCT_FILE} with the reason they differ",
            )
        )
    return issues


def _placement_issues(template: ThoughtTemplate, path: Path, root: Path) -> Iterable[LibraryIssue]:
    relative = path.relative_to(root)
    if relative.parts[0] != template.domain:
        yield LibraryIssue(path, "domain", f"file must live in {template.domain}/")
    if path.stem != template.id.rsplit(".", 1)[-1]:
        yield LibraryIssue(path, "id", f"file name must be {template.id.rsplit('.', 1)[-1]}.yaml")


def load_library(
    folder: Path | None = None, *, check_examples: bool = False
) -> list[ThoughtTemplate]:
    """The templates below `folder` (default: the shipped library).

    Raises:
        LibraryError: listing every problem, if there is any.
    """
    report = validate_library(folder or default_library_path(), check_examples=check_examples)
    if not report.ok:
        raise LibraryError(report.issues)
    return report.templates

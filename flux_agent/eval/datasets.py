"""Loading evaluation problems from a JSONL/JSON file or a Hugging Face dataset.

`load_items(source)` turns a source into `EvalItem`s with their reference
answers already extracted, then filters by subject and level and samples a
reproducible subset. `source` is a file path, or else a Hub name such as
"HuggingFaceH4/MATH-500" (optionally "name:config"; needs the `datasets` package).

Accepted record formats, recognised from the keys (one file holds one format):

- MATH: `problem` with `answer` or a `solution` whose last `\\boxed{}` is the
  answer; optional `subject` (or `type`), `level` ("Level 3", 3 or "3") and
  `unique_id` (or `id`). AIME dumps fit here too: integer answers and
  capitalised keys (`Problem`, `Answer`) are accepted.
- GSM8K: `question` with an `answer` whose worked solution ends in `#### N`.

Every problem a user can cause raises `DatasetError` with a one-line message
naming the file and line, which the CLI prints before exiting.
"""

from __future__ import annotations

import json
import logging
import os
import random
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flux_agent.eval.records import EvalItem
from flux_agent.verify.answers import extract_answer, normalise_answer

_MATH = "MATH"
_GSM8K = "GSM8K"
_FORMATS_ACCEPTED = (
    "MATH ('problem' with 'answer' or 'solution') "
    "or GSM8K ('question' with an 'answer' ending in '#### N')"
)
_BOXED = re.compile(r"\\(?:boxed|fbox)\s*\{")
_GSM8K_FINAL = re.compile(r"####\s*(.+)")
_GSM8K_CALCULATOR = re.compile(r"<<[^<>]*>>")  # the annotations GSM8K puts in its solutions
_LEVEL = re.compile(r"(?:level\s*)?(\d+)", flags=re.IGNORECASE)

logger = logging.getLogger(__name__)


class DatasetError(ValueError):
    """A dataset cannot be loaded as asked; the message is written for the user."""


@dataclass(frozen=True)
class _Source:
    """Raw records of one source, before their format is recognised."""

    place: str  # how messages name the source: the path as given, or the Hub name
    id_prefix: str  # file name or Hub name, for "<prefix>:<number>" ids
    unit: str  # "line" for JSONL, "record" for a JSON list or a Hub split
    rows: list[tuple[int, Any]]  # (line or 1-based record number, parsed JSON value)


@dataclass(frozen=True)
class _Record:
    """One recognised record, not yet given its final id."""

    number: int
    format: str
    problem: str
    answer: str
    subject: str | None
    level: int | None
    given_id: str | None
    solution: str | None = None


def load_items(
    source: str,
    *,
    limit: int | None = None,
    subjects: Sequence[str] = (),
    levels: Sequence[int] = (),
    seed: int = 0,
    split: str = "test",
) -> list[EvalItem]:
    """Load, filter and sample the problems of a dataset.

    Args:
        source: Path to a .jsonl file (or a .json list of records), or a Hugging
            Face dataset name, optionally with a config as "name:config".
        limit: Keep at most this many items, sampled with `seed` and returned in
            source order. None keeps all.
        subjects: Keep only these subjects; case, spaces and underscores are
            ignored, so "Number Theory" and "number_theory" match alike.
        levels: Keep only these difficulty levels.
        seed: Seed of the sample, so the same seed and limit give the same items.
        split: Split to load from a Hugging Face dataset; ignored for files.

    Returns:
        The items, in the order of the source.

    Raises:
        DatasetError: The source is missing, unreadable, malformed or unknown,
            or the filters leave no items.
    """
    if limit is not None and limit <= 0:
        raise DatasetError(f"limit must be a positive number of items, got {limit}")
    found = _read_source(source, split)
    items = _to_items(found, _recognise(found))
    if subjects:
        items = _filter_subjects(items, subjects, found.place)
    if levels:
        kept = [item for item in items if item.level in set(levels)]
        if not kept:
            present = sorted({item.level for item in items if item.level is not None})
            raise DatasetError(
                f"{found.place}: no items left at levels {', '.join(map(str, levels))}; "
                f"levels present{' in these subjects' if subjects else ''}: "
                f"{_levels_text(present)}"
            )
        items = kept
    if limit is not None and limit < len(items):
        chosen = sorted(random.Random(seed).sample(range(len(items)), limit))
        items = [items[index] for index in chosen]
    return items


def describe(items: Sequence[EvalItem]) -> str:
    """One line for progress output, e.g. "50 items: Algebra 12, Geometry 8 (levels 1-5)"."""
    text = f"{len(items)} item{'' if len(items) == 1 else 's'}"
    if any(item.subject for item in items):
        counts = Counter(item.subject or "no subject" for item in items)
        ranked = sorted(counts.items(), key=lambda pair: (-pair[1], pair[0]))
        text += ": " + ", ".join(f"{subject} {count}" for subject, count in ranked)
    present = sorted({item.level for item in items if item.level is not None})
    if present:
        text += f" ({'level' if len(present) == 1 else 'levels'} {_levels_text(present)})"
    return text


def _read_source(source: str, split: str) -> _Source:
    path = Path(source).expanduser()
    if path.is_file():
        return _read_file(path, source)
    if path.exists():
        raise DatasetError(f"{source}: is a directory, not a .jsonl or .json file")
    if _looks_like_path(source):
        raise DatasetError(f"{source}: file not found")
    return _read_hub(source, split)


def _looks_like_path(source: str) -> bool:
    # Hub names contain one "/" ("owner/name"), so a single "/" alone cannot mean a path.
    return (
        source.endswith((".jsonl", ".json"))
        or source.startswith(("/", ".", "~"))
        or source.count("/") > 1
        or (os.sep != "/" and os.sep in source)
    )


def _read_file(path: Path, place: str) -> _Source:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{place}: cannot read the file ({exc})") from exc
    if not text:
        raise DatasetError(f"{place}: the file is empty")
    if not text.strip():
        raise DatasetError(f"{place}: the file has only blank lines")
    if path.suffix == ".json":
        try:
            document = json.loads(text)
        except json.JSONDecodeError as exc:
            # Many ".json" dumps are really JSON Lines; read those as such.
            if exc.msg != "Extra data":
                raise DatasetError(f"{place}, line {exc.lineno}: invalid JSON ({exc.msg})") from exc
        else:
            if not isinstance(document, list):
                raise DatasetError(
                    f"{place}: expected a list of records, got a JSON {_json_type(document)}"
                )
            if not document:
                raise DatasetError(f"{place}: the list of records is empty")
            rows = list(enumerate(document, start=1))
            return _Source(place, path.name, "record", rows)
    return _Source(place, path.name, "line", _parse_lines(text, place))


def _parse_lines(text: str, place: str) -> list[tuple[int, Any]]:
    rows = []
    # Split on "\n" only: str.splitlines would also break at U+2028 inside JSON strings.
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            rows.append((number, json.loads(line)))
        except json.JSONDecodeError as exc:
            raise DatasetError(
                f"{place}, line {number}: invalid JSON ({exc.msg} at column {exc.colno})"
            ) from exc
    return rows


def _read_hub(source: str, split: str) -> _Source:
    name, _, config = source.partition(":")
    try:
        import datasets  # optional: only Hub sources need it
    except ImportError:
        raise DatasetError(
            f"{source}: not a file, and loading a Hugging Face dataset needs the "
            "`datasets` package: pip install datasets"
        ) from None
    try:
        dataset = datasets.load_dataset(name, config or None, split=split)
        rows = list(enumerate(dataset, start=1))
    except Exception as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise DatasetError(
            f"could not load Hugging Face dataset '{source}' (split '{split}'): {reason} "
            "(this needs internet access or a local Hugging Face cache; "
            "if you meant a file, check the path)"
        ) from exc
    if not rows:
        raise DatasetError(f"Hugging Face dataset '{source}' (split '{split}') has no records")
    return _Source(f"Hugging Face dataset '{source}'", source, "record", rows)


def _recognise(found: _Source) -> list[_Record]:
    records: list[_Record] = []
    unanswered: list[int] = []
    for number, row in found.rows:
        where = f"{found.place}, {found.unit} {number}"
        record = _recognise_record(row, number, where)
        if record is None:
            unanswered.append(number)
            continue
        if records and record.format != records[0].format:
            first = records[0]
            raise DatasetError(
                f"{where}: a {record.format} record after {first.format} records "
                f"({found.unit} {first.number}); one source must use one format"
            )
        records.append(record)
    if unanswered:
        # Published dumps have a few blank answers (MATH train has two); they cannot be
        # scored, and failing the whole file over them would help nobody.
        logger.warning(
            "%s: skipped %d record(s) with a blank answer (%s %s)",
            found.place,
            len(unanswered),
            found.unit + ("s" if len(unanswered) > 1 else ""),
            ", ".join(map(str, unanswered[:10])) + (", ..." if len(unanswered) > 10 else ""),
        )
    if not records:
        raise DatasetError(f"{found.place}: every record has a blank answer")
    return records


def _recognise_record(row: Any, number: int, where: str) -> _Record | None:
    """The record in `row`, or None when its answer is present but blank."""
    if not isinstance(row, dict):
        raise DatasetError(f"{where}: expected a JSON object, got a JSON {_json_type(row)}")
    fields = _lower_keys(row)
    if "problem" in fields:
        record_format, problem_key = _MATH, "problem"
        answer = _math_answer(fields, where)
        if answer is None:
            return None
    elif "question" in fields:
        record_format, problem_key = _GSM8K, "question"
        answer = _gsm8k_answer(fields, where)
    else:
        raise DatasetError(
            f"{where}: unrecognised record with keys {sorted(row)}; expected {_FORMATS_ACCEPTED}"
        )
    problem = fields[problem_key]
    if not isinstance(problem, str) or not problem.strip():
        raise DatasetError(f"{where}: '{problem_key}' is empty or not text")
    subject = fields.get("subject") or fields.get("type")
    given_id = fields.get("unique_id", fields.get("id"))
    return _Record(
        number=number,
        format=record_format,
        problem=problem.strip(),
        answer=answer,
        subject=subject.strip() if isinstance(subject, str) and subject.strip() else None,
        level=_level(fields.get("level")) if record_format == _MATH else None,
        given_id=str(given_id) if given_id not in (None, "") else None,
        solution=_solution(fields, record_format),
    )


def _solution(fields: dict[str, Any], record_format: str) -> str | None:
    """The worked solution: MATH's `solution`, or GSM8K's answer text before `#### N`."""
    text = fields.get("solution") if record_format == _MATH else fields.get("answer")
    if not isinstance(text, str):
        return None
    if record_format == _GSM8K:
        text = _GSM8K_CALCULATOR.sub("", text.split("####")[0])
    return text.strip() or None


def _lower_keys(row: dict[str, Any]) -> dict[str, Any]:
    # Some AIME dumps capitalise keys ("Problem", "Answer"); an exact lower-case key wins.
    fields = {key.lower(): value for key, value in row.items() if key != key.lower()}
    fields.update({key: value for key, value in row.items() if key == key.lower()})
    return fields


def _math_answer(fields: dict[str, Any], where: str) -> str | None:
    answer = fields.get("answer")
    blank = isinstance(answer, str) and not answer.strip()
    if answer is not None and not blank:
        return _answer_text(answer, "answer", where)
    solution = fields.get("solution")
    if solution is None and blank:
        return None
    if solution is None:
        raise DatasetError(f"{where}: record has 'problem' but neither 'answer' nor 'solution'")
    if not isinstance(solution, str) or not _BOXED.search(solution):
        raise DatasetError(
            f"{where}: 'solution' has no \\boxed{{}} answer and there is no 'answer'"
        )
    extracted = extract_answer(solution)
    if not extracted:
        raise DatasetError(f"{where}: the \\boxed{{}} answer in 'solution' is empty")
    return extracted


def _gsm8k_answer(fields: dict[str, Any], where: str) -> str:
    answer = fields.get("answer")
    if answer is None:
        raise DatasetError(f"{where}: record has 'question' but no 'answer'")
    if not isinstance(answer, str):
        return _answer_text(answer, "answer", where)
    finals = _GSM8K_FINAL.findall(answer)
    if not finals:
        raise DatasetError(f"{where}: GSM8K 'answer' does not end in a '#### N' line")
    # normalise_answer drops the thousands commas GSM8K writes ("#### 1,234").
    return _answer_text(finals[-1], "answer", where)


def _answer_text(value: Any, key: str, where: str) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise DatasetError(f"{where}: '{key}' is a JSON {_json_type(value)}, not text or a number")
    text = normalise_answer(str(value))
    if not text:
        raise DatasetError(f"{where}: '{key}' is empty")
    return text


def _level(value: Any) -> int | None:
    """3 from "Level 3", 3 or "3"; None when unknown ("Level ?") or absent."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        match = _LEVEL.fullmatch(value.strip())
        if match:
            return int(match.group(1))
    return None


def _to_items(found: _Source, records: list[_Record]) -> list[EvalItem]:
    given = [record.given_id for record in records]
    # Ids key resumed runs, so a source whose own ids are missing or repeated gets positional ones.
    use_given = all(given) and len(set(given)) == len(given)
    return [
        EvalItem(
            id=record.given_id
            if use_given and record.given_id
            else f"{found.id_prefix}:{record.number}",
            problem=record.problem,
            answer=record.answer,
            subject=record.subject,
            level=record.level,
            solution=record.solution,
        )
        for record in records
    ]


def _subject_key(subject: str) -> str:
    """The same key for "Counting & Probability" and "counting_and_probability"."""
    return re.sub(r"[^a-z0-9]+", "_", subject.lower().replace("&", " and ")).strip("_")


def _filter_subjects(items: list[EvalItem], subjects: Sequence[str], place: str) -> list[EvalItem]:
    present = {_subject_key(item.subject): item.subject for item in items if item.subject}
    unknown = [subject for subject in subjects if _subject_key(subject) not in present]
    if unknown:
        choices = ", ".join(sorted(present.values())) or "none (the records have no subject)"
        raise DatasetError(f"{place}: no subject {', '.join(unknown)}; subjects present: {choices}")
    wanted = {_subject_key(subject) for subject in subjects}
    return [item for item in items if item.subject and _subject_key(item.subject) in wanted]


def _levels_text(levels: Sequence[int]) -> str:
    """Sorted levels as a range like 1-5, a single level as 3, no levels as none."""
    if not levels:
        return "none"
    return str(levels[0]) if levels[0] == levels[-1] else f"{levels[0]}-{levels[-1]}"


def _json_type(value: Any) -> str:
    names = {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}
    return names.get(type(value), "number")

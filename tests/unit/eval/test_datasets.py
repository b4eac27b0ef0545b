"""Loading evaluation items from files and (faked) Hugging Face datasets."""

from __future__ import annotations

import json
import sys
import types

import pytest

from flux_agent.eval.datasets import DatasetError, describe, load_items
from flux_agent.eval.records import EvalItem


def _write_jsonl(path, records):
    path.write_text("".join(json.dumps(record) + "\n" for record in records), encoding="utf-8")
    return str(path)


def _math_records(count):
    subjects = ["Algebra", "Number Theory", "Geometry", "Counting & Probability"]
    return [
        {
            "problem": f"What is {index} + 1?",
            "answer": str(index + 1),
            "subject": subjects[index % len(subjects)],
            "level": f"Level {index % 5 + 1}",
            "unique_id": f"train/{index}.json",
        }
        for index in range(count)
    ]


@pytest.fixture
def math_file(tmp_path):
    return _write_jsonl(tmp_path / "math.jsonl", _math_records(50))


# --- formats -----------------------------------------------------------------


def test_math_with_answer(tmp_path):
    source = _write_jsonl(
        tmp_path / "math.jsonl",
        [
            {
                "problem": " Half of one? ",
                "answer": "$\\dfrac{1}{2}$",
                "subject": "Algebra",
                "level": "Level 3",
                "unique_id": "test/algebra/1.json",
            },
            {"problem": "p2", "answer": "2", "level": 4, "unique_id": "test/x/2.json"},
            {"problem": "p3", "answer": "3", "level": "5", "unique_id": "test/x/3.json"},
            {"problem": "p4", "answer": "4", "level": "Level ?", "unique_id": "test/x/4.json"},
        ],
    )
    items = load_items(source)
    assert items[0] == EvalItem(
        id="test/algebra/1.json",
        problem="Half of one?",
        answer="\\frac{1}{2}",
        subject="Algebra",
        level=3,
    )
    assert [item.level for item in items] == [3, 4, 5, None]
    assert [item.subject for item in items[1:]] == [None, None, None]


def test_math_solution_only_uses_the_last_boxed_answer(tmp_path):
    solution = "First \\boxed{2} is wrong; the answer is \\boxed{\\frac{1}{\\sqrt{2}}}."
    source = _write_jsonl(
        tmp_path / "math.jsonl",
        [{"problem": "p", "solution": solution, "type": "Precalculus", "level": "Level 2"}],
    )
    [item] = load_items(source)
    assert item.answer == "\\frac{1}{\\sqrt{2}}"
    assert item.subject == "Precalculus" and item.level == 2
    assert item.id == "math.jsonl:1"


def test_gsm8k_answer_after_hashes_without_commas(tmp_path):
    source = _write_jsonl(
        tmp_path / "gsm.jsonl",
        [
            {"question": "How many clips?", "answer": "48/2 = <<48/2=24>>24\n#### 72"},
            {"question": "How much money?", "answer": "1000 + 234 = 1234\n#### 1,234"},
        ],
    )
    items = load_items(source)
    assert [(item.id, item.answer) for item in items] == [
        ("gsm.jsonl:1", "72"),
        ("gsm.jsonl:2", "1234"),
    ]
    assert items[0].problem == "How many clips?"
    assert all(item.subject is None and item.level is None for item in items)


def test_aime_int_answers_and_ids(tmp_path):
    source = _write_jsonl(
        tmp_path / "aime.jsonl",
        [
            {"id": "2024-I-1", "year": 2024, "problem": "p1", "answer": 204},
            {"id": "2024-I-2", "year": 2024, "problem": "p2", "answer": 0},
        ],
    )
    items = load_items(source)
    assert [(item.id, item.answer) for item in items] == [("2024-I-1", "204"), ("2024-I-2", "0")]


def test_capitalised_keys(tmp_path):
    source = _write_jsonl(
        tmp_path / "aime.jsonl", [{"ID": "2023-II-5", "Problem": "Find n.", "Answer": 33}]
    )
    [item] = load_items(source)
    assert (item.id, item.problem, item.answer) == ("2023-II-5", "Find n.", "33")


def test_json_list_file(tmp_path):
    path = tmp_path / "aime.json"
    path.write_text(json.dumps([{"problem": "p1", "answer": 1}, {"problem": "p2", "answer": 2}]))
    items = load_items(str(path))
    assert [(item.id, item.answer) for item in items] == [
        ("aime.json:1", "1"),
        ("aime.json:2", "2"),
    ]


def test_json_file_holding_json_lines(tmp_path):
    source = _write_jsonl(tmp_path / "dump.json", [{"Problem": "p1", "Answer": 1}] * 2)
    assert [item.id for item in load_items(source)] == ["dump.json:1", "dump.json:2"]


def test_blank_answers_are_skipped_with_a_warning(tmp_path, caplog):
    source = _write_jsonl(
        tmp_path / "math.jsonl",
        [
            {"problem": "p1", "answer": "1"},
            {"problem": "p2", "answer": ""},
            {"problem": "p3", "answer": " ", "solution": "so \\boxed{3}"},
        ],
    )
    items = load_items(source)
    assert [(item.id, item.answer) for item in items] == [
        ("math.jsonl:1", "1"),
        ("math.jsonl:3", "3"),
    ]
    assert "skipped 1 record(s) with a blank answer (line 2)" in caplog.text


def test_only_blank_answers_is_an_error(tmp_path):
    source = _write_jsonl(tmp_path / "math.jsonl", [{"problem": "p", "answer": ""}])
    with pytest.raises(DatasetError, match="every record has a blank answer"):
        load_items(source)


def test_duplicate_ids_fall_back_to_line_numbers(tmp_path):
    path = tmp_path / "dup.jsonl"
    path.write_text(
        json.dumps({"problem": "a", "answer": "1", "unique_id": "same"})
        + "\n\n"  # a blank line is skipped but still counts for line numbers
        + json.dumps({"problem": "b", "answer": "2", "unique_id": "same"})
        + "\n"
    )
    assert [item.id for item in load_items(str(path))] == ["dup.jsonl:1", "dup.jsonl:3"]


# --- bad files ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "fragments"),
    [
        ("", ["empty"]),
        ("\n  \n\n", ["only blank lines"]),
        ('{"problem": "p", "answer": "1"}\n\n{"problem": oops}\n', ["line 3", "invalid JSON"]),
        ('{"problem": "p", "answer": "1"}\n[1, 2]\n', ["line 2", "JSON object", "array"]),
        ('{"problem": "p"}\n', ["line 1", "'answer'", "'solution'"]),
        ('{"question": "q"}\n', ["line 1", "'answer'"]),
        ('{"problem": "", "answer": "1"}\n', ["line 1", "'problem'"]),
        ('{"problem": "p", "solution": "it is 4"}\n', ["line 1", "\\boxed"]),
        ('{"problem": "p", "answer": [1]}\n', ["line 1", "'answer'"]),
        ('{"prompt": "p", "target": "1"}\n', ["line 1", "'prompt'", "'target'", "MATH", "GSM8K"]),
        (
            '{"problem": "p", "answer": "1"}\n{"question": "q", "answer": "#### 2"}\n',
            ["line 2", "GSM8K", "MATH", "one format"],
        ),
        (
            '{"question": "q", "answer": "#### 3"}\n{"question": "q", "answer": "3"}\n',
            ["line 2", "####"],
        ),
    ],
)
def test_bad_files_name_the_file_and_line(tmp_path, content, fragments):
    path = tmp_path / "bad.jsonl"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DatasetError) as caught:
        load_items(str(path))
    message = str(caught.value)
    assert str(path) in message
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message


def test_bad_json_list_file(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('{"problem": "p", "answer": "1"}')
    with pytest.raises(DatasetError, match="expected a list of records"):
        load_items(str(path))


@pytest.mark.parametrize("name", ["missing.jsonl", "missing.json", "data/sub/missing"])
def test_missing_file(tmp_path, name):
    source = str(tmp_path / name)
    with pytest.raises(DatasetError, match="file not found") as caught:
        load_items(source)
    assert source in str(caught.value)


def test_directory_is_not_a_dataset(tmp_path):
    with pytest.raises(DatasetError, match="directory"):
        load_items(str(tmp_path))


def test_dataset_error_is_a_value_error():
    assert issubclass(DatasetError, ValueError)


# --- filters and sampling -----------------------------------------------------


@pytest.mark.parametrize("subject", ["Number Theory", "number_theory", "NUMBER-THEORY"])
def test_subject_filter_accepts_both_spellings(math_file, subject):
    items = load_items(math_file, subjects=[subject])
    assert len(items) == 13
    assert {item.subject for item in items} == {"Number Theory"}


def test_subject_filter_with_ampersand_and_several_subjects(math_file):
    items = load_items(math_file, subjects=["counting_and_probability", "algebra"])
    assert {item.subject for item in items} == {"Counting & Probability", "Algebra"}
    assert len(items) == 25


def test_level_filter(math_file):
    items = load_items(math_file, levels=[1, 2])
    assert len(items) == 20
    assert {item.level for item in items} == {1, 2}
    both = load_items(math_file, subjects=["Algebra"], levels=[1])
    assert {(item.subject, item.level) for item in both} == {("Algebra", 1)}


def test_unknown_subject_lists_the_subjects_present(math_file):
    with pytest.raises(DatasetError, match="no subject Calculus") as caught:
        load_items(math_file, subjects=["Calculus"])
    assert "Algebra, Counting & Probability, Geometry, Number Theory" in str(caught.value)


def test_filters_leaving_nothing(math_file):
    with pytest.raises(DatasetError, match="no items left") as caught:
        load_items(math_file, levels=[9])
    assert "levels present: 1-5" in str(caught.value)


def test_limit_is_reproducible_and_in_file_order(math_file):
    first = [item.id for item in load_items(math_file, limit=10, seed=3)]
    again = [item.id for item in load_items(math_file, limit=10, seed=3)]
    other = [item.id for item in load_items(math_file, limit=10, seed=4)]
    everything = [item.id for item in load_items(math_file)]
    assert first == again
    assert len(first) == 10 and len(set(first)) == 10
    assert first != other
    assert first == sorted(first, key=everything.index)


def test_limit_applies_after_filtering(math_file):
    items = load_items(math_file, subjects=["Geometry"], limit=5, seed=1)
    assert len(items) == 5 and {item.subject for item in items} == {"Geometry"}


def test_limit_larger_than_the_dataset_keeps_everything(math_file):
    assert load_items(math_file, limit=500) == load_items(math_file)


@pytest.mark.parametrize("limit", [0, -1])
def test_limit_must_be_positive(math_file, limit):
    with pytest.raises(DatasetError, match="positive"):
        load_items(math_file, limit=limit)


def test_describe():
    items = [
        EvalItem(id="1", problem="p", answer="1", subject="Algebra", level=1),
        EvalItem(id="2", problem="p", answer="1", subject="Geometry", level=5),
        EvalItem(id="3", problem="p", answer="1", subject="Algebra", level=3),
    ]
    assert describe(items) == "3 items: Algebra 2, Geometry 1 (levels 1-5)"
    assert describe(items[:1]) == "1 item: Algebra 1 (level 1)"
    assert describe([EvalItem(id="g", problem="p", answer="2")]) == "1 item"


# --- Hugging Face datasets (faked: no test reaches the internet) --------------------


def _fake_datasets(monkeypatch, load_dataset):
    module = types.ModuleType("datasets")
    module.load_dataset = load_dataset  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "datasets", module)


def test_hub_dataset_gives_items(monkeypatch):
    calls = []

    def load_dataset(name, config=None, *, split):
        calls.append((name, config, split))
        return [
            {
                "problem": "p1",
                "solution": "so \\boxed{5}",
                "answer": "5",
                "subject": "Algebra",
                "level": 2,
                "unique_id": "test/algebra/5.json",
            },
            {"problem": "p2", "solution": "\\boxed{7}", "subject": "Geometry", "level": 4},
        ]

    _fake_datasets(monkeypatch, load_dataset)
    items = load_items("HuggingFaceH4/MATH-500")
    assert calls == [("HuggingFaceH4/MATH-500", None, "test")]
    # One record lacks a unique_id, so every id is positional.
    assert [(item.id, item.answer, item.level) for item in items] == [
        ("HuggingFaceH4/MATH-500:1", "5", 2),
        ("HuggingFaceH4/MATH-500:2", "7", 4),
    ]
    load_items("openai/gsm8k:main", split="train", subjects=["Algebra"])
    assert calls[-1] == ("openai/gsm8k", "main", "train")


def test_hub_dataset_that_cannot_be_loaded(monkeypatch):
    def load_dataset(name, config=None, *, split):
        raise ConnectionError("Couldn't reach 'org/nothing' on the Hub\n(offline mode)")

    _fake_datasets(monkeypatch, load_dataset)
    with pytest.raises(DatasetError) as caught:
        load_items("org/nothing")
    message = str(caught.value)
    assert "could not load" in message and "org/nothing" in message
    assert "internet" in message and "\n" not in message


def test_hub_record_errors_name_the_record(monkeypatch):
    _fake_datasets(monkeypatch, lambda name, config=None, *, split: [{"text": "x"}])
    with pytest.raises(DatasetError, match=r"'org/odd', record 1: unrecognised record"):
        load_items("org/odd")


def test_hub_needs_the_datasets_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "datasets", None)  # makes `import datasets` fail
    with pytest.raises(DatasetError, match="pip install datasets"):
        load_items("HuggingFaceH4/MATH-500")

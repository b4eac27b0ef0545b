"""Extraction: the versioned prompt, the reply schema, parsing replies, and the repair retry."""

from __future__ import annotations

import datetime as dt
import json
import re

import pytest

from flux_agent.backends.base import Completion, Usage
from flux_agent.backends.scripted import ScriptedBackend
from flux_agent.growth.extract import (
    DEFAULT_PROMPT,
    MAX_TEMPLATES,
    PROMPTS_DIR,
    ExtractionPrompt,
    Worked,
    draft_schema,
    extract,
    parse_reply,
    provenance_for,
)
from flux_agent.templates import load_library
from flux_agent.templates.model import DOMAINS
from tests.unit.growth.conftest import (
    GARBAGE,
    MODEL,
    SOURCE,
    euclid_template,
    reply,
    wrong_check_template,
)

TAGS = ["euclidean-algorithm", "gcd-lcm", "quadratics", "vieta"]
WORKED = Worked(
    SOURCE,
    "17",
    "What is the greatest common divisor of 462 and 1071?",
    answer="21",
    solution="By the Euclidean algorithm, 1071 = 2*462 + 147, 462 = 3*147 + 21, 147 = 7*21.",
)


@pytest.fixture(scope="module")
def sample():
    return min(load_library(), key=lambda t: len(t.model_dump_json()))


@pytest.fixture
def provenance():
    return provenance_for(WORKED, MODEL, DEFAULT_PROMPT)


# --- the prompt


VERSIONS = sorted(path.stem for path in PROMPTS_DIR.glob("*.md"))


def test_the_default_prompt_is_one_of_the_files():
    assert DEFAULT_PROMPT in VERSIONS and "extract-v1" in VERSIONS
    assert ExtractionPrompt.load().version == DEFAULT_PROMPT


@pytest.mark.parametrize("version", VERSIONS)
def test_prompt_renders_problem_solution_answer_and_the_allowed_tags(sample, version):
    prompt = ExtractionPrompt.load(version)
    assert prompt.version == version

    system, user = prompt.messages(WORKED, TAGS, sample)

    assert system["role"] == "system" and user["role"] == "user"
    assert "Allowed tags: euclidean-algorithm, gcd-lcm, quadratics, vieta" in system["content"]
    assert ", ".join(DOMAINS) in system["content"]
    assert f'"{sample.id}"' in system["content"]
    assert "$tags" not in system["content"] and "$sample" not in system["content"]
    assert WORKED.problem in user["content"]
    assert WORKED.solution in user["content"]
    assert "Final answer: 21" in user["content"]
    assert "=== user ===" not in system["content"] and "=== system ===" not in user["content"]


@pytest.mark.parametrize("version", VERSIONS)
def test_prompt_without_solution_or_answer_says_so(sample, version):
    bare = Worked("runs", "abc", "What is 2 + 2?")
    _, user = ExtractionPrompt.load(version).messages(bare, TAGS, sample)
    assert "(no worked solution given: work it out)" in user["content"]
    assert "Final answer: (not given)" in user["content"]


def test_unknown_prompt_version_names_the_known_ones():
    with pytest.raises(ValueError, match="extract-v9") as raised:
        ExtractionPrompt.load("extract-v9")
    assert f"(known: {', '.join(VERSIONS)})" in str(raised.value)


# --- the reply schema


def draft_properties(tags: list[str]) -> dict:
    return draft_schema(tags)["properties"]["templates"]["items"]["properties"]


def test_draft_schema_pins_the_domain():
    assert draft_properties(TAGS)["domain"]["enum"] == list(DOMAINS)


def test_draft_schema_pins_tags_and_leaves_out_provenance():
    schema = draft_schema(TAGS)
    templates = schema["properties"]["templates"]
    assert schema["required"] == ["templates"]
    assert templates["minItems"] == 1 and templates["maxItems"] == MAX_TEMPLATES == 2
    draft = templates["items"]
    properties = draft["properties"]
    assert properties["domain"]["type"] == "string"
    assert properties["tags"]["items"]["enum"] == TAGS
    assert not {"provenance", "version", "schema_version"} & set(properties)
    assert not {"provenance", "version", "schema_version"} & set(draft["required"])
    assert draft["additionalProperties"] is False
    assert {"id", "name", "steps", "example", "check"} <= set(draft["required"])
    assert properties["steps"]["maxItems"] == 6 and properties["tags"]["maxItems"] == 5
    assert "WorkedExample" in schema["$defs"]


def test_draft_schema_without_a_vocabulary_leaves_tags_free():
    assert "enum" not in draft_properties([])["tags"]["items"]


def test_draft_schema_asks_for_ids_and_sentences_the_model_accepts():
    properties = draft_properties(TAGS)
    pattern = re.compile(properties["id"]["pattern"])
    assert pattern.match("algebra.quadratics.vieta_sum_product")
    for bad in ("2x + 3 = 11", "Algebra.quadratics.vieta", "algebra.vieta", "a.b.c.d"):
        assert not pattern.match(bad)
    for name in ("applies_when", "steps", "pitfalls"):
        assert properties[name]["items"]["minLength"] >= 8  # the model's "real sentence" rule


def test_draft_schema_compiles_to_a_llama_cpp_grammar():
    from llama_cpp import LlamaGrammar

    from flux_agent.backends.llama_cpp import grammar_schema

    tags = sorted(t for template in load_library() for t in template.tags)
    grammar = LlamaGrammar.from_json_schema(
        json.dumps(grammar_schema(draft_schema(sorted(set(tags))))), verbose=False
    )
    assert grammar is not None


# --- parsing a reply


def test_a_valid_reply_gives_a_template_with_extracted_provenance(provenance):
    candidates, errors = parse_reply(reply(euclid_template()), provenance)

    assert errors == []
    (candidate,) = candidates
    assert candidate.errors == [] and candidate.data == euclid_template()
    template = candidate.template
    assert template.id == "number_theory.gcd.euclidean_algorithm_gcd"
    assert template.version == 1
    assert template.provenance.kind == "extracted"
    assert template.provenance.source == SOURCE
    assert template.provenance.record == "17"
    assert template.provenance.model == MODEL
    assert template.provenance.prompt_version == DEFAULT_PROMPT
    assert template.provenance.date == dt.date.today()


def test_a_fenced_reply_with_chatter_is_read(provenance):
    fenced = f"```json\n{reply(euclid_template())}\n```"
    text = f"Sure! Here are the templates:\n{fenced}\nHope it helps."
    candidates, errors = parse_reply(text, provenance)
    assert errors == [] and candidates[0].template is not None


def test_a_reply_that_is_not_json_has_no_candidates(provenance):
    candidates, errors = parse_reply(GARBAGE, provenance)
    assert candidates == []
    (error,) = errors
    assert error.startswith("the reply is not JSON")


@pytest.mark.parametrize(
    "text",
    ["[1, 2]", '{"template": {}}', '{"templates": {"id": "x"}}', '"templates"'],
    ids=["list", "wrong-key", "not-a-list", "string"],
)
def test_a_reply_of_the_wrong_shape_says_what_shape_is_wanted(provenance, text):
    candidates, errors = parse_reply(text, provenance)
    assert candidates == []
    assert errors == ['the reply must be an object {"templates": [...]}']


def test_one_broken_candidate_does_not_cost_the_other(provenance):
    broken = {**wrong_check_template(), "steps": ["Count."], "domain": "combinatorics"}
    candidates, errors = parse_reply(reply(broken, euclid_template()), provenance)

    assert errors == []
    first, second = candidates
    assert first.template is None and first.data == broken
    assert any(e.startswith("steps:") for e in first.errors)
    assert any(e.startswith("domain:") for e in first.errors)
    assert second.template is not None and second.errors == []
    assert second.template.provenance == provenance


def test_non_object_candidates_and_extra_candidates(provenance):
    text = reply("just a string", euclid_template(), euclid_template())
    candidates, errors = parse_reply(text, provenance)
    assert errors == []
    assert len(candidates) == MAX_TEMPLATES  # the third one is ignored
    assert candidates[0].template is None
    assert candidates[0].errors == ["a template must be a JSON object"]


def test_provenance_and_version_the_model_writes_are_ignored(provenance):
    claimed = {
        **euclid_template(),
        "version": 7,
        "provenance": {"kind": "authored", "source": "me", "date": "1999-01-01"},
    }
    (candidate,), errors = parse_reply(reply(claimed), provenance)
    assert errors == []
    assert candidate.template.version == 1
    assert candidate.template.provenance == provenance
    assert candidate.template.provenance.kind == "extracted"


def test_repeated_tags_are_dropped_not_fatal(provenance):
    repeated = {**euclid_template(), "tags": ["gcd-lcm", "euclidean-algorithm", "gcd-lcm"]}
    (candidate,), _ = parse_reply(reply(repeated), provenance)
    assert candidate.template.tags == ["gcd-lcm", "euclidean-algorithm"]


def test_an_empty_list_is_neither_a_candidate_nor_an_error(provenance):
    assert parse_reply('{"templates": []}', provenance) == ([], [])


# --- extract(): one request, and one repair retry


async def test_an_invalid_reply_is_retried_once_with_the_error_fed_back(sample):
    backend = ScriptedBackend([GARBAGE, reply(euclid_template())])
    prompt = ExtractionPrompt.load()

    result = await extract(
        backend, WORKED, prompt=prompt, tags=TAGS, sample=sample, model=MODEL, max_tokens=900
    )

    assert len(backend.calls) == 2
    first, second = backend.calls
    for request in backend.calls:
        assert request.json_schema == draft_schema(TAGS)
        assert request.temperature == 0.0 and request.max_tokens == 900
    assert list(second.messages[:2]) == list(first.messages)
    assistant, repair = second.messages[2:]
    assert assistant == {"role": "assistant", "content": GARBAGE}
    assert repair["role"] == "user"
    assert repair["content"].startswith("That reply was not valid: the reply is not JSON")
    assert "Reply again with only the JSON object." in repair["content"]

    assert result.raw == [GARBAGE, reply(euclid_template())]
    assert result.errors == []
    (candidate,) = result.candidates
    assert candidate.template.id == "number_theory.gcd.euclidean_algorithm_gcd"
    prompt_tokens = sum(
        len(m["content"].split()) for request in backend.calls for m in request.messages
    )
    completion_tokens = len(GARBAGE.split()) + len(reply(euclid_template()).split())
    assert result.usage == Usage(prompt_tokens, completion_tokens, 2)


async def test_candidate_errors_are_fed_back_and_a_valid_first_reply_is_not_retried(sample):
    broken = {**euclid_template(), "steps": ["Divide."]}
    backend = ScriptedBackend([reply(broken), reply(euclid_template())])
    prompt = ExtractionPrompt.load()

    result = await extract(backend, WORKED, prompt=prompt, tags=TAGS, sample=sample, model=MODEL)

    repair = backend.calls[1].messages[-1]["content"]
    assert "steps: List should have at least 3 items" in repair
    assert result.candidates[0].template is not None

    once = ScriptedBackend([reply(euclid_template(), broken)])
    result = await extract(once, WORKED, prompt=prompt, tags=TAGS, sample=sample, model=MODEL)
    assert len(once.calls) == 1  # one valid candidate is enough
    assert [c.template is not None for c in result.candidates] == [True, False]


async def test_a_reply_that_stays_invalid_ends_with_its_errors(sample):
    cut = Completion(text='{"templates": [{"id": "number_theory.gcd', finish_reason="length")
    backend = ScriptedBackend([cut, GARBAGE, "never asked"])
    prompt = ExtractionPrompt.load()

    result = await extract(backend, WORKED, prompt=prompt, tags=TAGS, sample=sample, model=MODEL)

    assert len(backend.calls) == 2  # retries=1: one reply and one retry
    assert "cut off at the token limit" in backend.calls[1].messages[-1]["content"]
    assert result.candidates == [] and result.raw == [cut.text, GARBAGE]
    assert len(result.errors) == 1 and result.errors[0].startswith("the reply is not JSON")
    assert result.usage.calls == 2

    none = ScriptedBackend([GARBAGE])
    await extract(none, WORKED, prompt=prompt, tags=TAGS, sample=sample, model=MODEL, retries=0)
    assert len(none.calls) == 1

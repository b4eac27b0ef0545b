"""Capping string lengths so llama.cpp accepts the grammar and small models cannot loop."""

from __future__ import annotations

from flux_agent.agent.models import StepResult, plan_schema
from flux_agent.backends.llama_cpp import GRAMMAR_MAX_STRING, grammar_schema


def test_long_and_unbounded_strings_are_capped_short_ones_kept():
    schema = {
        "type": "object",
        "properties": {
            "long": {"type": "string", "maxLength": 5000},
            "free": {"type": "string"},
            "short": {"type": "string", "maxLength": 12},
            "pick": {"type": "string", "enum": ["a", "b"]},
        },
    }
    capped = grammar_schema(schema)["properties"]
    assert capped["long"]["maxLength"] == GRAMMAR_MAX_STRING
    assert capped["free"]["maxLength"] == GRAMMAR_MAX_STRING
    assert capped["short"]["maxLength"] == 12
    assert "maxLength" not in capped["pick"]
    assert schema["properties"]["free"] == {"type": "string"}  # the input is not modified


def test_agent_schemas_reach_nested_definitions():
    plan = grammar_schema(plan_schema(["algebra.a.b"], 2))
    goal = plan["$defs"]["PlanStep"]["properties"]["goal"]
    assert goal["maxLength"] <= GRAMMAR_MAX_STRING
    step = grammar_schema(StepResult.model_json_schema())
    assert all(p["maxLength"] <= GRAMMAR_MAX_STRING for p in step["properties"].values())

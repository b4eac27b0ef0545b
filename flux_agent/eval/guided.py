"""`flux-guided`: template guidance in one pass, the lightest form of the agent.

The navigator chooses one template among those retrieved for the problem (one
short call, its id pinned to the retrieved ones by the JSON schema); the solver
then writes one chain of thought that follows the template's steps and ends in
`\\boxed{}`. No per-step calls, checks or revisions: it measures what the
template library adds to plain chain-of-thought at almost the same cost, next to
`flux`, which adds the whole plan-instantiate-check loop.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from pydantic import BaseModel

from flux_agent.agent.structured import generate_structured
from flux_agent.backends.base import GenerationRequest, LLMBackend
from flux_agent.eval import prompts
from flux_agent.eval.outcome import SOLVER, TEXT_KEPT, Outcome
from flux_agent.templates import TemplateStore
from flux_agent.verify import extract_answer

NAVIGATOR = "navigator"


class TemplateChoice(BaseModel):
    """The navigator's pick: which retrieved template fits the problem best."""

    template_id: str


def choice_schema(template_ids: list[str]) -> dict[str, object]:
    schema = TemplateChoice.model_json_schema()
    schema["properties"]["template_id"]["enum"] = list(template_ids)
    return schema


@dataclass
class TemplateGuided:
    """Retrieve, let the navigator choose one template, then one guided chain of thought."""

    navigator: LLMBackend
    solver: LLMBackend
    store: TemplateStore
    candidates: int = 4
    max_tokens: int = 1024
    name: str = "flux-guided"

    async def __call__(self, problem: str, *, seed: int = 0) -> Outcome:
        hits = await asyncio.to_thread(self.store.search, problem, self.candidates)
        templates = {hit.template.id: hit.template for hit in hits}
        if not templates:
            return Outcome(None, error="the template store returned no templates")
        usage = {}
        chosen = next(iter(templates))  # the closest, if the navigator cannot choose
        if len(templates) > 1:
            reply = await generate_structured(
                self.navigator,
                prompts.choose_template_messages(problem, list(templates.values())),
                TemplateChoice,
                schema=choice_schema(list(templates)),
                max_tokens=48,
                retries=1,
            )
            usage[NAVIGATOR] = reply.usage
            if reply.value is not None and reply.value.template_id in templates:
                chosen = reply.value.template_id
        request = GenerationRequest(
            messages=prompts.guided_messages(problem, templates[chosen]),
            max_tokens=self.max_tokens,
            seed=seed,
        )
        (completion,) = await self.solver.generate([request])
        usage[SOLVER] = completion.usage
        details = {
            "template": chosen,
            "retrieved": list(templates),
            "text": completion.text[-TEXT_KEPT:],
            "finish_reason": completion.finish_reason,
        }
        return Outcome(extract_answer(completion.text), usage, details)

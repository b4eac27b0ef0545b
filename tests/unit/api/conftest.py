"""An API over scripted backends: real routes, service, agent graph, parsing and checks."""

from __future__ import annotations

import asyncio
import json
import math
import shutil
import zlib
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import httpx
import pytest

from flux_agent.api import FluxService, ServiceLimits, create_app
from flux_agent.backends.base import Completion, GenerationRequest, TextCallback
from flux_agent.backends.scripted import ScriptedBackend
from flux_agent.config import Settings
from flux_agent.templates import default_library_path

PROBLEM = "What is the sum of the roots of x^2 - 5x + 6 = 0?"


def answer_anything(request: GenerationRequest) -> str:
    """A model that follows every schema: plans the first offered template, computes 2 + 3."""
    schema = request.json_schema or {}
    properties = schema.get("properties", {})
    if "steps" in properties:
        ids = schema["$defs"]["PlanStep"]["properties"]["template_id"]["enum"]
        steps = [{"template_id": ids[0], "goal": "Find the sum of the roots."}]
        return json.dumps({"analysis": "a quadratic", "steps": steps})
    if "result" in properties:
        return json.dumps({"result": "5", "expression": "2 + 3"})
    if "answer" in properties:
        return json.dumps({"answer": "5"})
    return "By Vieta the sum of the roots is -b/a = 5."


class SlowBackend(ScriptedBackend):
    """Waits `delay` seconds before each reply (and can be cancelled while it waits)."""

    def __init__(self, script, delay: float) -> None:
        super().__init__(script)
        self.delay = delay
        self.cancelled = 0

    async def generate(
        self, requests: Sequence[GenerationRequest], on_text: TextCallback | None = None
    ) -> list[Completion]:
        try:
            await asyncio.sleep(self.delay)
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        return await super().generate(requests, on_text)


class HashEmbedder:
    """Bag-of-words vectors hashed into fixed buckets: comparable across calls, model-free."""

    name = "test-hash"

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        vectors = []
        for text in texts:
            vector = [0.0] * 512
            for word in text.lower().split():
                vector[zlib.crc32(word.encode()) % 512] += 1.0
            norm = math.sqrt(sum(v * v for v in vector)) or 1.0
            vectors.append([v / norm for v in vector])
        return vectors


@pytest.fixture
def library_copy(tmp_path: Path) -> Path:
    folder = tmp_path / "library"
    shutil.copytree(default_library_path(), folder)
    return folder


def make_service(
    tmp_path: Path,
    store,
    sandbox,
    *,
    navigator=None,
    solver=None,
    library: Path | None = None,
    **limits,
) -> FluxService:
    settings = Settings(data_dir=tmp_path / "data", library_path=library)
    return FluxService(
        settings,
        store=store,
        sandbox=sandbox,
        backends={
            "navigator": navigator or ScriptedBackend(answer_anything),
            "solver": solver or ScriptedBackend(answer_anything),
        },
        embedder=HashEmbedder(),
        limits=ServiceLimits(**limits),
    )


@pytest.fixture
def service(tmp_path, keyword_store, sandbox) -> FluxService:
    return make_service(tmp_path, keyword_store, sandbox)


def client_for(service: FluxService, *, raise_app_exceptions: bool = True) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(
        app=create_app(service), raise_app_exceptions=raise_app_exceptions
    )
    return httpx.AsyncClient(transport=transport, base_url="http://test")


@pytest.fixture
async def client(service) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(service) as http:
        yield http


def parse_sse(text: str) -> list[tuple[str, dict]]:
    """(event name, data) for each server-sent event; comments are skipped."""
    events = []
    for block in text.strip().split("\n\n"):
        fields = dict(
            line.split(": ", 1) for line in block.splitlines() if not line.startswith(":")
        )
        if fields:
            events.append((fields.get("event", "message"), json.loads(fields["data"])))
    return events

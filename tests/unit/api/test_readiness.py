"""Readiness checks per backend kind, without loading any model."""

from __future__ import annotations

from flux_agent.api.service import _backend_check
from flux_agent.config import BackendSettings


async def test_a_transformers_navigator_is_ready_only_when_its_folder_holds_a_model(tmp_path):
    settings = BackendSettings.from_spec(f"hf:{tmp_path}")
    passed, text = await _backend_check(None, settings)
    assert not passed and "no config.json" in text and str(tmp_path) in text

    (tmp_path / "config.json").write_text("{}")
    passed, text = await _backend_check(None, settings)
    assert passed and text.startswith("ok: ")

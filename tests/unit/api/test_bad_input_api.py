"""Bad and hostile input: each gets the right status and a clear message, never a traceback."""

from __future__ import annotations

import pytest

from tests.unit.api.conftest import PROBLEM, client_for, make_service


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"problem": ""}, "problem"),
        ({"problem": "   \n "}, "problem"),
        ({}, "problem"),
        ({"problem": 42}, "problem"),
        ({"problem": "x" * 20_001}, "problem"),
        ({"problem": PROBLEM, "stream": "sometimes"}, "stream"),
        ({"problem": PROBLEM, "budgets": {"max_steps": 0}}, "budgets.max_steps"),
        ({"problem": PROBLEM, "run_id": "../../etc"}, "run_id"),
        ({"problem": PROBLEM, "temperature": 0.3}, "temperature"),
    ],
)
async def test_invalid_solve_requests_name_the_field(client, body, field):
    response = await client.post("/v1/solve", json=body)

    assert response.status_code == 422
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert field in [f["field"] for f in error["fields"]]
    assert error["message"].startswith(f"invalid request: {error['fields'][0]['field']}")


async def test_malformed_json_is_a_400(client):
    response = await client.post(
        "/v1/solve", content=b'{"problem": ', headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["error"]["message"] == "the body is not valid JSON"


async def test_a_huge_body_is_refused_before_it_is_read(tmp_path, keyword_store, sandbox):
    service = make_service(tmp_path, keyword_store, sandbox, max_body_bytes=4096)
    async with client_for(service) as client:
        declared = await client.post("/v1/solve", json={"problem": "x" * 10_000})

        async def chunks():  # no content-length: counted as it arrives
            for _ in range(10):
                yield b"x" * 1000

        streamed = await client.post(
            "/v1/solve", content=chunks(), headers={"content-type": "application/json"}
        )
    for response in (declared, streamed):
        assert response.status_code == 413
        assert response.json()["error"]["type"] == "request_too_large"
        assert "4096 bytes" in response.json()["error"]["message"]


async def test_unknown_run_and_template_ids_are_404(client):
    for path in ("/v1/runs/nope", "/v1/templates/algebra.no.such"):
        response = await client.get(path)
        assert response.status_code == 404
        assert "nope" in response.text or "algebra.no.such" in response.text
    resumed = await client.post("/v1/runs/nope/resume")
    assert resumed.status_code == 404
    assert resumed.json()["error"] == {"type": "not_found", "message": "no run with id 'nope'"}
    assert (await client.get("/v1/nothing-here")).json()["error"]["message"] == "no such route"


async def test_the_api_key_guards_every_v1_route_but_not_health(tmp_path, keyword_store, sandbox):
    service = make_service(tmp_path, keyword_store, sandbox, api_key="s3cret")
    async with client_for(service) as client:
        missing = await client.get("/v1/runs")
        wrong = await client.get("/v1/models", headers={"Authorization": "Bearer guess"})
        right = await client.get("/v1/runs", headers={"Authorization": "Bearer s3cret"})
        solve = await client.post("/v1/solve", json={"problem": PROBLEM})
        health = await client.get("/healthz")
        ready = await client.get("/readyz")
    assert missing.status_code == wrong.status_code == solve.status_code == 401
    assert missing.headers["www-authenticate"] == "Bearer"
    assert "Authorization: Bearer" in missing.json()["error"]["message"]
    assert wrong.json()["error"] == {
        "type": "authentication_error",
        "message": "the API key is wrong",
    }
    assert right.status_code == 200
    assert health.json() == {"status": "ok", "checks": {}}
    assert ready.status_code == 200


async def test_an_unexpected_failure_is_a_plain_500(tmp_path, keyword_store, sandbox):
    service = make_service(tmp_path, keyword_store, sandbox)

    async def explode(limit, offset):
        raise RuntimeError("secret internals")

    service.runs = explode
    # Like a real server: the error middleware answers, then re-raises for the log.
    async with client_for(service, raise_app_exceptions=False) as client:
        response = await client.get("/v1/runs")
    assert response.status_code == 500
    assert response.json()["error"]["type"] == "server_error"
    assert "secret internals" not in response.text and "Traceback" not in response.text


async def test_docs_and_the_web_page_are_served_without_a_cdn(tmp_path, keyword_store, sandbox):
    from flux_agent.api import default_app_path

    service = make_service(tmp_path, keyword_store, sandbox, api_key="k")
    async with client_for(service) as client:
        page = await client.get("/")
        docs = await client.get("/docs")
        schema = await client.get("/openapi.json")
        asset = await client.get("/docs-assets/swagger-ui.css")
    assert page.status_code == 200 and "<html" in page.text
    assert docs.status_code == 200 and schema.status_code == 200
    assert "/v1/chat/completions" in schema.json()["paths"]
    if (default_app_path() / "vendor" / "swagger-ui" / "swagger-ui-bundle.js").exists():
        assert "/docs-assets/swagger-ui-bundle.js" in docs.text and "cdn" not in docs.text
        assert asset.status_code == 200

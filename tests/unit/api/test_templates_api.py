"""Template search, lookup and addition through the API, with the library's gate."""

from __future__ import annotations

import yaml

from flux_agent.templates import default_library_path, load_library
from tests.unit.api.conftest import client_for, make_service

NEW = {
    "id": "arithmetic.rates.round_trip_average_speed",
    "name": "Average speed of a round trip is a harmonic mean",
    "domain": "arithmetic",
    "tags": ["rates", "averages"],
    "description": "Going out at speed a and back at speed b over the same distance, the "
    "average speed is total distance over total time, 2ab/(a+b), never (a+b)/2.",
    "applies_when": [
        "A trip out and back covers one distance at two different speeds.",
        "The question asks for the average speed of the whole journey.",
    ],
    "steps": [
        "Call the one-way distance d and write each leg's time as d divided by its speed.",
        "Add the two times and double the distance for the whole journey.",
        "Divide total distance by total time; d cancels, leaving 2ab/(a+b).",
    ],
    "pitfalls": ["Averaging the two speeds directly, which weights them by distance."],
    "example": {
        "problem": "A cyclist rides to town at 12 km/h and back at 6 km/h. What is her "
        "average speed for the round trip, in km/h?",
        "solution": "Each leg is d km, taking d/12 and d/6 hours, 3d/12 = d/4 hours in all. "
        "The average speed is 2d / (d/4) = 8 km/h.",
        "answer": "8",
    },
    "check": "2*12*6/(12 + 6)",
}


async def test_search_and_get_return_templates(client):
    found = (await client.get("/v1/templates/search", params={"q": "sum of roots", "k": 2})).json()

    assert found["query"] == "sum of roots" and len(found["results"]) == 2
    top = found["results"][0]
    assert top["template"]["id"] == "algebra.quadratics.vieta_sum_product"
    assert top["score"] > found["results"][1]["score"]
    template = (await client.get(f"/v1/templates/{top['template']['id']}")).json()
    assert template == top["template"]


async def test_search_rejects_an_empty_query_and_an_unknown_domain(client):
    empty = await client.get("/v1/templates/search", params={"q": "  "})
    domain = await client.get("/v1/templates/search", params={"q": "roots", "domain": "magic"})
    assert empty.status_code == domain.status_code == 422
    assert empty.json()["error"]["fields"] == [{"field": "q", "message": "empty"}]
    assert "unknown domain 'magic'" in domain.json()["error"]["message"]


async def test_a_valid_template_is_written_indexed_and_searchable(
    tmp_path, keyword_store, sandbox, library_copy
):
    service = make_service(tmp_path, keyword_store, sandbox, library=library_copy)
    async with client_for(service) as client:
        response = await client.post("/v1/templates", json=NEW)
        assert response.status_code == 201, response.text
        created = response.json()
        assert created["path"] == "arithmetic/round_trip_average_speed.yaml"
        assert created["template"]["provenance"]["source"] == "api"
        fetched = await client.get(f"/v1/templates/{NEW['id']}")
        again = await client.post("/v1/templates", json=NEW)
    assert fetched.status_code == 200 and fetched.json()["name"] == NEW["name"]
    # The file is a valid library member: the whole library still loads.
    written = yaml.safe_load((library_copy / created["path"]).read_text())
    assert written["check"] == NEW["check"]
    assert NEW["id"] in {t.id for t in load_library(library_copy)}
    assert again.status_code == 409
    assert {"field": "id", "message": "a template with this id exists"} in again.json()["error"][
        "fields"
    ]


async def test_invalid_templates_get_field_level_errors(
    tmp_path, keyword_store, sandbox, library_copy
):
    service = make_service(tmp_path, keyword_store, sandbox, library=library_copy)
    cases = {
        "steps": {**NEW, "steps": ["too few"]},
        "domain": {**NEW, "domain": "astrology"},
        "check": {**NEW, "check": "2*12*6/(12 + 7)"},
        "tags": {**NEW, "tags": ["rates", "made-up-tag"]},
    }
    async with client_for(service) as client:
        for field, body in cases.items():
            response = await client.post("/v1/templates", json=body)
            assert response.status_code == 422, (field, response.text)
            error = response.json()["error"]
            assert field in [f["field"] for f in error["fields"]], (field, error)
        not_object = await client.post("/v1/templates", json=["a", "list"])
    assert not_object.status_code == 422
    assert not (library_copy / "arithmetic" / "round_trip_average_speed.yaml").exists()


async def test_a_near_duplicate_is_refused_naming_the_original(
    tmp_path, keyword_store, sandbox, library_copy
):
    original = yaml.safe_load(
        (default_library_path() / "algebra" / "vieta_sum_product.yaml").read_text()
    )
    twin = {**original, "id": "algebra.quadratics.vieta_again"}
    twin.pop("provenance")
    service = make_service(tmp_path, keyword_store, sandbox, library=library_copy)
    async with client_for(service) as client:
        response = await client.post("/v1/templates", json=twin)
    assert response.status_code == 409
    error = response.json()["error"]
    assert error["fields"][0]["field"] == "technique"
    assert "near-duplicate of algebra.quadratics.vieta_sum_product" in error["fields"][0]["message"]
    assert not (library_copy / "algebra" / "vieta_again.yaml").exists()

"""The OpenAPI document of the admin app: fetched over HTTP from a running node, a valid
OpenAPI 3.1 document, in step with the app's routes both ways, and true to what the routes
answer (statuses, reply bodies, the bounds of every body field)."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from openapi_schema_validator import OAS31Validator
from openapi_spec_validator import validate

from tests.conftest import Running, ServerFactory

METHODS = ("get", "put", "post", "delete", "patch")
# Routes the app has that are not operations: the demo page's static files (a prefix, not
# a path), and the 404 that every /demo/ path answers without --demo.
NOT_OPERATIONS = {("*", "/demo/{tail}")}


async def fetch(server: Running, path: str = "/api/openapi.json") -> dict[str, Any]:
    async with (
        aiohttp.ClientSession() as http,
        http.get(server.http_url + path) as resp,  # no token: the document is public
    ):
        assert resp.status == 200
        assert resp.content_type == "application/json"
        doc: dict[str, Any] = await resp.json()
        return doc


def documented(doc: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        (method.upper(), path)
        for path, item in doc["paths"].items()
        for method in item
        if method in METHODS
    }


def routed(app: web.Application) -> set[tuple[str, str]]:
    """(method, path template) of every route the app has, HEAD (aiohttp adds one to each
    GET) and the static files left out."""
    out = set()
    for route in app.router.routes():
        if isinstance(route.resource, web.StaticResource) or route.method == "HEAD":
            continue
        assert route.resource is not None
        path = re.sub(r"\{(\w+):[^}]*\}", r"{\1}", route.resource.canonical)
        out.add((route.method, path))
    return out - NOT_OPERATIONS


@pytest.fixture(params=[False, True], ids=["plain", "demo"])
async def node(request: pytest.FixtureRequest, make_server: ServerFactory) -> Running:
    return await make_server(demo=request.param)


async def test_the_document_is_valid_openapi_3_1(node: Running) -> None:
    doc = await fetch(node)
    validate(doc)  # raises on any departure from the OpenAPI 3.1 schema
    assert doc["openapi"].startswith("3.1.")
    assert doc["servers"] == [{"url": node.http_url}]
    for path, item in doc["paths"].items():
        for method, op in item.items():
            OAS31Validator.check_schema(op["responses"][next(iter(op["responses"]))])
            body = op.get("requestBody", {}).get("content", {}).get("application/json")
            if body is not None:
                OAS31Validator.check_schema(body["schema"])
                OAS31Validator(body["schema"]).validate(body["example"])
            assert set(re.findall(r"\{(\w+)\}", path)) == {
                p["name"] for p in op.get("parameters", []) if p["in"] == "path"
            }, (method, path)


async def test_every_route_is_documented_and_every_operation_routed(node: Running) -> None:
    doc = await fetch(node)
    assert node.node.http_runner is not None
    app = node.node.http_runner.app
    have, described = routed(app), documented(doc)
    assert have - described == set(), "routes missing from the document"
    assert described - have == set(), "documented operations the app does not route"
    assert (("POST", "/demo/login") in described) is node.settings.demo


@pytest.fixture
async def http(node: Running) -> AsyncIterator[aiohttp.ClientSession]:
    auth = {"Authorization": "Bearer " + node.token("oa_ops", "admin")}
    async with aiohttp.ClientSession(headers=auth) as session:
        yield session


def _fill(path: str) -> str:
    values = {"user": "oa_creator", "product": "openapi_tee", "wid": "oa_none", "action": "paid"}
    values["room"] = "oa_room"  # opened by oa_creator (test_each_operation_answers_as_documented)
    values["pin"] = "oa_none"  # no such pinned message: unpin answers its documented 404
    values["series"] = "oa_series"  # published by oa_creator (-- series --)
    values["receipt"] = "oa_none"  # no such receipt: refund and GET answer their 404
    return re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], path)


async def test_each_operation_answers_as_documented(
    node: Running, http: aiohttp.ClientSession
) -> None:
    """Every operation, called with its example body, answers a status it documents, and
    its documented success body schema holds for what it answers."""
    doc = await fetch(node)
    await node.grant("oa_creator", 1)  # the creator exists for sub_price
    creator = await node.connect("oa_creator", "creator")  # the room of the room routes
    await creator.ok("room_open", room="oa_room", title="OpenAPI room")
    rival = await node.connect("oa_rival", "creator")  # -- live match: match/end ends it --
    await rival.ok("room_open", room="oa_rival_room", title="OpenAPI rival")
    mid = (await creator.ok("match_invite", room="oa_room", opponent="oa_rival_room"))["match"]
    await rival.ok("match_accept", match=mid)
    episodes = [{"title": "One", "url": "https://cdn.example.com/1.mp4"}]  # -- series --
    await creator.ok("series_publish", series="oa_series", title="S", price=5, episodes=episodes)
    for path, item in doc["paths"].items():  # POST /api/products comes before restock
        for method, op in item.items():
            body = op.get("requestBody", {}).get("content", {}).get("application/json")
            url = node.http_url + _fill(path)
            kw = {"json": body["example"]} if body else {}
            async with http.request(method.upper(), url, **kw) as resp:
                status, text = resp.status, await resp.text()
                ctype = resp.content_type
            assert str(status) in op["responses"], (method, path, status, text)
            expected_ok = "oa_none" not in url  # no such withdrawal: 404, documented
            assert (status < 300) is expected_ok, (method, path, status, text)
            content = op["responses"][str(status)]["content"]
            assert ctype in content, (method, path, ctype)
            if ctype == "application/json":
                reply = json.loads(text)
                OAS31Validator(_resolve(doc, content[ctype]["schema"])).validate(reply)


def _resolve(doc: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if ref is None:
        return schema
    found: Any = doc
    for part in ref.removeprefix("#/").split("/"):
        found = found[part]
    assert isinstance(found, dict)
    return found


def _bad_values(schema: dict[str, Any]) -> list[Any]:
    """Values just outside what ``schema`` allows."""
    one = schema.get("anyOf", [schema])[0]
    if one.get("type") == "integer":
        return [one["minimum"] - 1, one["maximum"] + 1, "7", True]
    if one.get("type") == "boolean":
        return ["yes", 1]
    bad: list[Any] = [12]
    if "enum" in one:
        bad.append("not_" + one["enum"][0])
    if "pattern" in one and "A-Za-z0-9" in one["pattern"]:
        bad += ["bad id", "x" * 65, "caf\u00e9"]
    if "maxLength" in one:
        bad.append("x" * (one["maxLength"] + 1))
    if one.get("minLength", 0) >= 1:
        bad.append("")
    return bad


async def test_each_documented_bound_is_the_one_the_server_checks(
    node: Running, http: aiohttp.ClientSession
) -> None:
    """For every body field: a value outside its documented schema is bad_request (400),
    and a required field left out is too. The schemas come from the same declarations."""
    doc = await fetch(node)
    checked = 0
    for path, item in doc["paths"].items():
        for method, op in item.items():
            body = op.get("requestBody", {}).get("content", {}).get("application/json")
            if body is None:
                continue
            url = node.http_url + _fill(path)
            cases = [
                {**body["example"], name: bad}
                for name, schema in body["schema"]["properties"].items()
                for bad in _bad_values(schema)
            ]
            cases += [
                {k: v for k, v in body["example"].items() if k != name}
                for name in body["schema"]["required"]
            ]
            for case in cases:
                assert not OAS31Validator(body["schema"]).is_valid(case), case
                async with http.request(method.upper(), url, json=case) as resp:
                    reply = await resp.json()
                    assert resp.status == 400, (method, path, case, reply)
                assert reply["error"]["code"] == "bad_request"
                checked += 1
    assert checked > 60

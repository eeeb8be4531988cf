"""The HTTP contract of each service: its OpenAPI document is valid and complete (every
response has a schema, every error status the one error body, bearer authentication, CSV
declared, no reference to a missing definition), a client's models are generated from it, its
Swagger UI page works without internet, and schemathesis fuzzing the running services finds
no server error and no answer the document does not describe."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import re
import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
import uvicorn
from openapi_spec_validator import validate

from customer_service.bootstrap import definition as customer_definition
from orders_service.bootstrap import definition as orders_definition
from reporting_service.bootstrap import definition as reporting_definition
from salesplatform.auth import mint
from salesplatform.devstack.pytest_plugin import TEST_SIGNING_KEY, settings_for_tests
from salesplatform.events import Actor, Role
from salesplatform.openapi import dangling_refs, operations
from salesplatform.service import Runtime, http_app
from visit_service.bootstrap import definition as visit_definition

# A manager sees the whole department; a rep only the own customers and district.
HIGH = Actor(id="sm", role=Role.sales_manager)
LOW = Actor(id="r1", role=Role.rep, district="D1", area="A1")
# Examples per operation and token: 4 services, 235 operations as a manager and 109 reads as
# a rep, about 610 requests, under 3 minutes with the services' start.
FUZZ_EXAMPLES = 2
SECURED_ERRORS = {"400", "401", "403", "404", "409", "422", "500", "503"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest_asyncio.fixture
async def servers(make_database, nats_url, unique_prefix):
    """The four services, each on a real HTTP server on a free loopback port: name → base URL."""
    definitions = [
        customer_definition(),
        visit_definition("Asia/Shanghai"),
        orders_definition(),
        reporting_definition("Asia/Shanghai"),
    ]
    async with contextlib.AsyncExitStack() as stack:
        urls: dict[str, str] = {}
        for defn in definitions:
            config = settings_for_tests(
                await make_database(defn.name), nats_url, unique_prefix, service=defn.name, pool_max=6
            )
            runtime = await stack.enter_async_context(Runtime(defn, config, run_timers=False))
            port = _free_port()
            server = uvicorn.Server(
                uvicorn.Config(http_app(runtime), host="127.0.0.1", port=port, log_config=None, access_log=False)
            )
            task = asyncio.create_task(server.serve())
            stack.push_async_callback(_stop, server, task)
            while not server.started:
                assert not task.done(), f"{defn.name} did not start"
                await asyncio.sleep(0.05)
            urls[defn.name] = f"http://127.0.0.1:{port}"
        yield urls


async def _stop(server: uvicorn.Server, task: asyncio.Task[None]) -> None:
    server.should_exit = True
    await task


async def _documents(urls: dict[str, str]) -> dict[str, dict[str, Any]]:
    async with httpx.AsyncClient() as client:
        return {name: (await client.get(f"{url}/openapi.json")).json() for name, url in urls.items()}


async def test_each_document_is_valid_complete_and_makes_a_client(servers, tmp_path) -> None:
    for name, doc in (await _documents(servers)).items():
        validate(doc)
        assert dangling_refs(doc) == [], name
        assert doc["components"]["securitySchemes"]["bearer"] == {
            **doc["components"]["securitySchemes"]["bearer"],
            "type": "http",
            "scheme": "bearer",
        }
        for path, method, op in operations(doc):
            where = f"{name} {method.upper()} {path}"
            ok = op["responses"].get("200") or op["responses"].get("202")
            assert ok is not None and ok.get("content"), where
            assert all(media.get("schema") for media in ok["content"].values()), where
            errors = {s for s in op["responses"] if s[0] in "45"}
            if op.get("security") == []:
                assert {"422", "500", "503"} <= errors, where
            else:
                assert errors >= SECURED_ERRORS, where
            for status in errors:
                schema = op["responses"][status]["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/Error"}, where
            if path.startswith("/commands/"):
                assert "413" in errors, where
            if any(p["name"] == "format" for p in op.get("parameters", ())):
                assert "text/csv" in ok["content"], where
        _generate_models(name, doc, tmp_path)


# The share of GET routes whose 200 JSON answer is documented as a bare object, per service:
# a client generator or a fuzzer learns nothing of their fields. What is left: the platform's
# own routes (probes, schemas, administration) and the queries not yet described.
BARE_ANSWERS = {"customer": 0.38, "visit": 0.24, "orders": 0.29}


async def test_the_queries_document_their_answers(servers) -> None:
    docs = await _documents(servers)
    bare = {name: _bare_answers(docs[name]) for name in BARE_ANSWERS}
    print("GET routes answering a bare object:", json.dumps(bare, indent=1))
    shares = {name: round(len(bare[name]) / _json_gets(docs[name]), 2) for name in BARE_ANSWERS}
    assert shares == BARE_ANSWERS


def _json_answers(doc: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Each GET route's path and the schema of its 200 JSON answer."""
    for path, method, op in operations(doc):
        content = op["responses"].get("200", {}).get("content", {})
        if method == "get" and "application/json" in content:
            yield path, content["application/json"]["schema"]


def _json_gets(doc: dict[str, Any]) -> int:
    return sum(1 for _ in _json_answers(doc))


def _bare_answers(doc: dict[str, Any]) -> list[str]:
    """The GET routes whose 200 JSON answer's schema names no field."""
    return [
        path
        for path, schema in _json_answers(doc)
        if "$ref" not in schema and not schema.get("properties") and not schema.get("items")
    ]


def _generate_models(name: str, doc: dict[str, Any], tmp_path: Path) -> None:
    """A client's models (pydantic, by datamodel-code-generator) from the document: the
    commands' bodies and the error body come out as classes that read real payloads."""
    from datamodel_code_generator import DataModelType, InputFileType, generate
    from datamodel_code_generator.format import Formatter

    source = tmp_path / f"{name}.json"
    source.write_text(json.dumps(doc), encoding="utf-8")
    target = tmp_path / f"{name}_models.py"
    generate(
        source,
        input_file_type=InputFileType.OpenAPI,
        output=target,
        output_model_type=DataModelType.PydanticV2BaseModel,
        formatters=[Formatter.BUILTIN],
    )
    spec = importlib.util.spec_from_file_location(f"{name}_models", target)
    assert spec is not None and spec.loader is not None
    models = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = models
    spec.loader.exec_module(models)
    error = models.Error.model_validate({"error": {"code": "not_found", "message": "no such customer"}})
    assert error.error.code == "not_found"
    for path, method, op in operations(doc):
        if path.startswith("/commands/") and method == "post":
            command = op["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
            assert hasattr(models, command), (name, command)


async def test_the_docs_page_uses_only_the_services_own_files(servers) -> None:
    async with httpx.AsyncClient(base_url=servers["customer"]) as client:
        page = (await client.get("/docs")).text
        sources = re.findall(r'(?:src|href)="([^"]+)"', page)
        assert sources and all(s.startswith("/docs/assets/") for s in sources), sources
        for source in sources:
            asset = await client.get(source)
            assert asset.status_code == 200 and len(asset.content) > 1000, source


@pytest.mark.timeout(600)
async def test_fuzzing_finds_no_server_error_and_no_undocumented_answer(servers, tmp_path) -> None:
    """schemathesis, FUZZ_EXAMPLES examples per operation: every operation as a manager, the
    reads (where the line of command decides what a reader gets) as a rep too. Four runs at a
    time: each mostly waits for the services."""
    # Each document read once, from a file: made on first request, a large one takes seconds.
    for name, doc in (await _documents(servers)).items():
        (tmp_path / f"{name}.json").write_text(json.dumps(doc), encoding="utf-8")
    limit = asyncio.Semaphore(4)
    runs = [(name, "high", HIGH) for name in servers] + [(name, "low", LOW) for name in servers]
    results = await asyncio.gather(
        *(_fuzz(limit, servers[name], name, role, actor, tmp_path) for name, role, actor in runs)
    )
    failed = [f"{name} as {role}:\n{text[-6000:]}" for name, role, code, text in results if code != 0]
    assert not failed, "\n\n".join(failed)
    print("fuzzing:", json.dumps({f"{name}/{role}": _summary(text) for name, role, _, text in results}, indent=1))


async def _fuzz(
    limit: asyncio.Semaphore, url: str, name: str, role: str, actor: Actor, tmp_path: Path
) -> tuple[str, str, int, str]:
    token = mint(actor, TEST_SIGNING_KEY)
    only_reads = ["--include-method", "GET"] if role == "low" else []
    async with limit:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "schemathesis.cli",
            "run",
            str(tmp_path / f"{name}.json"),
            "--url",
            url,
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
            "--phases",
            "fuzzing",
            "--max-examples",
            str(FUZZ_EXAMPLES),
            "--seed",
            "20260301",
            "--workers",
            "1",
            "--suppress-health-check",
            "all",
            "--no-shrink",
            "--request-timeout",
            "60",
            "--header",
            f"Authorization: Bearer {token}",
            *only_reads,
            "--report",
            "junit",
            "--report-junit-path",
            str(tmp_path / f"{name}-{role}.xml"),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            cwd=tmp_path,  # its example database stays out of the tree
        )
        output, _ = await process.communicate()
    assert process.returncode is not None
    return name, role, process.returncode, output.decode(errors="replace")


def _summary(text: str) -> str:
    """`Operations: N selected / M total` and `Test cases: K generated, K passed` of a run."""
    wanted = re.compile(r"(Operations:.*selected.*|\d+ generated.*)")
    return " | ".join(m.group(1).strip() for m in map(wanted.search, text.splitlines()) if m)

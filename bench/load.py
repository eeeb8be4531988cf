"""HTTP load against a running service: closed loop (N clients, as fast as answers come) for
throughput, open loop (requests sent on a fixed schedule whatever the answers) for latency.

Open-loop latency is measured from each request's scheduled send time, so a slow service
cannot hide its queueing by slowing the sender down (no coordinated omission).
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Self
from urllib.parse import urlsplit

import httpx
import orjson

from bench.harness import percentile

Body = Callable[[int], tuple[str, dict[str, Any]]]  # i -> (path, json body)


@dataclass
class LoadResult:
    ok: int = 0
    errors: int = 0
    unanswered: int = 0  # cut off by the open loop's drain limit
    seconds: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    error_samples: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.ok / self.seconds if self.seconds > 0 else float("nan")

    def p(self, q: float) -> float:
        return percentile(self.latencies_ms, q)

    def note_error(self, text: str) -> None:
        self.errors += 1
        if len(self.error_samples) < 5:
            self.error_samples.append(text[:300])


class Answer:
    """The part of an HTTP response the load loops look at."""

    __slots__ = ("content", "status_code")

    def __init__(self, status_code: int, content: bytes) -> None:
        self.status_code = status_code
        self.content = content

    @property
    def text(self) -> str:
        return self.content.decode(errors="replace")


class KeepAliveClient:
    """A minimal HTTP/1.1 client: JSON POSTs over a pool of keep-alive connections.

    The load generator shares the machine's two cores with the service, PostgreSQL and NATS.
    httpx costs about 1.7 ms of CPU per request here — as much as the service spends on a
    command — so it would take the CPU the service needs and measure itself. This client costs a
    small fraction of that; `--http-client httpx` uses httpx instead.
    """

    def __init__(self, base_url: str, headers: dict[str, str], connections: int) -> None:
        parts = urlsplit(base_url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self._head = "".join(
            f"{k}: {v}\r\n"
            for k, v in {"Host": f"{self.host}:{self.port}", **headers, "Content-Type": "application/json"}.items()
        )
        self._limit = asyncio.Semaphore(connections)
        self._idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        self._all: list[asyncio.StreamWriter] = []

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        for writer in self._all:
            writer.close()

    async def post(self, path: str, json: Any) -> Answer:
        body = orjson.dumps(json)
        request = (f"POST {path} HTTP/1.1\r\n{self._head}Content-Length: {len(body)}\r\n\r\n").encode() + body
        async with self._limit:
            reader, writer = self._idle.pop() if self._idle else await self._connect()
            try:
                writer.write(request)
                answer, keep = await self._read(reader)
            except BaseException:
                writer.close()
                raise
            if keep:
                self._idle.append((reader, writer))
            else:
                writer.close()
            return answer

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        reader, writer = await asyncio.open_connection(self.host, self.port)
        self._all.append(writer)
        return reader, writer

    @staticmethod
    async def _read(reader: asyncio.StreamReader) -> tuple[Answer, bool]:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            if name:
                headers[name.strip().lower()] = value.strip()
        if headers.get("transfer-encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
                chunk = await reader.readexactly(size + 2)
                if size == 0:
                    break
                chunks.append(chunk[:-2])
            content = b"".join(chunks)
        else:
            content = await reader.readexactly(int(headers.get("content-length", "0")))
        return Answer(status, content), headers.get("connection", "").lower() != "close"


HttpClient = KeepAliveClient | httpx.AsyncClient


def client(base_url: str, token: str, connections: int, kind: str = "keepalive") -> HttpClient:
    """A keep-alive client with up to `connections` connections: the light one, or httpx."""
    headers = {"Authorization": f"Bearer {token}"}
    if kind == "httpx":
        return httpx.AsyncClient(
            base_url=base_url,
            headers=headers,
            timeout=httpx.Timeout(30.0),
            limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
        )
    return KeepAliveClient(base_url, headers, connections)


async def _send(http: HttpClient, body: Body, i: int, result: LoadResult) -> bool:
    path, payload = body(i)
    try:
        response = await http.post(path, json=payload)
    except (httpx.HTTPError, OSError, asyncio.IncompleteReadError, ValueError) as exc:
        result.note_error(f"{type(exc).__name__}: {exc}")
        return False
    if response.status_code == 200:
        return True
    result.note_error(f"{response.status_code} {response.text}")
    return False


async def closed_loop(
    http: HttpClient, body: Body, clients: int, seconds: float, counter: itertools.count[int]
) -> LoadResult:
    """`clients` concurrent senders, each sending its next request when the last is answered."""
    result = LoadResult()
    deadline = time.perf_counter() + seconds

    async def sender() -> None:
        while time.perf_counter() < deadline:
            start = time.perf_counter()
            if await _send(http, body, next(counter), result):
                result.ok += 1
                result.latencies_ms.append((time.perf_counter() - start) * 1000)

    start = time.perf_counter()
    await asyncio.gather(*(sender() for _ in range(clients)))
    result.seconds = time.perf_counter() - start
    return result


async def open_loop(
    http: HttpClient,
    body: Body,
    per_second: float,
    seconds: float,
    counter: itertools.count[int],
    drain_seconds: float = 5.0,
) -> LoadResult:
    """Send at a fixed rate for `seconds`; latency counts from the scheduled send time.

    A service slower than the rate falls behind without bound; answers still missing
    `drain_seconds` after the last send are cancelled and counted with the time they had waited
    so far (a lower bound), so an overloaded service shows in the percentiles and the run ends.
    """
    result = LoadResult()
    total = int(per_second * seconds)
    pending: dict[asyncio.Task[None], float] = {}

    async def one(scheduled: float) -> None:
        if await _send(http, body, next(counter), result):
            result.ok += 1
            result.latencies_ms.append((time.perf_counter() - scheduled) * 1000)

    start = time.perf_counter()
    for n in range(total):
        scheduled = start + n / per_second
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(one(scheduled))
        pending[task] = scheduled
        task.add_done_callback(lambda t: pending.pop(t, None))
    if pending:
        await asyncio.wait(list(pending), timeout=drain_seconds)
    cut_off = time.perf_counter()
    for task, scheduled in list(pending.items()):
        task.cancel()
        result.unanswered += 1
        result.latencies_ms.append((cut_off - scheduled) * 1000)
    result.seconds = cut_off - start
    return result

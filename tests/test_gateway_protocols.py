"""The gateway's uvicorn protocols (protocols.py), spoken to with raw sockets: what a slow or
malformed client meets (issue 14 item 9). A connection that never finishes its headers is
answered 408 and closed after ``gateway.header_timeout``; a WebSocket upgrade with a header
websockets refuses gets its 431 and is closed."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway_support import served, settings_for, stack

#: short, so a test waits little; the deadlines below are generous multiples of it
TIMEOUT = 0.5


@pytest.fixture
async def base(tmp_path: Path) -> AsyncIterator[tuple[str, int]]:
    settings = settings_for(tmp_path, KMS_GATEWAY_HEADER_TIMEOUT=str(TIMEOUT))
    async with stack(settings, roles=("gateway",)) as s, served(s.services) as (url, _, _):
        host, port = url.removeprefix("http://").split(":")
        yield host, int(port)


async def until_closed(reader: asyncio.StreamReader, within: float) -> bytes:
    """Everything the server sends until it closes the connection (AssertionError if it
    does not close it within ``within`` s)."""
    got = b""
    try:
        async with asyncio.timeout(within):
            while chunk := await reader.read(65536):
                got += chunk
    except TimeoutError:
        raise AssertionError(f"still open after {within} s; got {got[:200]!r}") from None
    return got


async def trickle(writer: asyncio.StreamWriter, stop: asyncio.Event) -> None:
    """One header byte every 50 ms: never a complete request."""
    with contextlib.suppress(ConnectionError):
        writer.write(b"X-Slow: ")
        while not stop.is_set():
            writer.write(b"a")
            await writer.drain()
            await asyncio.sleep(0.05)


@pytest.mark.slow
async def test_headers_sent_a_byte_at_a_time_are_cut_at_the_timeout(
        base: tuple[str, int]) -> None:
    reader, writer = await asyncio.open_connection(*base)
    writer.write(b"GET /health HTTP/1.1\r\nHost: gw\r\n")
    stop = asyncio.Event()
    slow = asyncio.create_task(trickle(writer, stop))
    try:
        got = await until_closed(reader, 20 * TIMEOUT)
    finally:
        stop.set()
        await slow
        writer.close()
    assert got.startswith(b"HTTP/1.1 408 "), got
    assert b'"code":"timeout"' in got


@pytest.mark.slow
async def test_a_connection_that_sends_nothing_is_closed(base: tuple[str, int]) -> None:
    reader, writer = await asyncio.open_connection(*base)
    try:
        got = await until_closed(reader, 20 * TIMEOUT)
    finally:
        writer.close()
    assert got.startswith(b"HTTP/1.1 408 "), got


@pytest.mark.slow
async def test_the_next_request_on_a_kept_alive_connection_has_the_same_limit(
        base: tuple[str, int]) -> None:
    reader, writer = await asyncio.open_connection(*base)
    try:
        writer.write(b"GET /health HTTP/1.1\r\nHost: gw\r\n\r\n")
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 "), head
        length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length:"))
        await reader.readexactly(length)
        writer.write(b"GET /health HTTP/1.1\r\nHost: gw\r\nX-Half: ")  # never finished
        got = await until_closed(reader, 20 * TIMEOUT)
    finally:
        writer.close()
    assert got.startswith(b"HTTP/1.1 408 "), got


@pytest.mark.slow
async def test_a_slow_but_complete_request_is_answered(base: tuple[str, int]) -> None:
    reader, writer = await asyncio.open_connection(*base)
    try:
        for part in (b"GET /health HTTP/1.1\r\n", b"Host: gw\r\n", b"Connection: close\r\n",
                     b"\r\n"):
            writer.write(part)
            await writer.drain()
            await asyncio.sleep(TIMEOUT / 10)
        got = await until_closed(reader, 20 * TIMEOUT)
    finally:
        writer.close()
    assert got.startswith(b"HTTP/1.1 200 "), got[:200]


async def test_a_websocket_upgrade_with_a_9_kb_header_gets_431_and_is_closed(
        base: tuple[str, int]) -> None:
    reader, writer = await asyncio.open_connection(*base)
    try:
        writer.write(b"GET /api/stream/ETH-USD HTTP/1.1\r\nHost: gw\r\n"
                     b"Upgrade: websocket\r\nConnection: Upgrade\r\n"
                     b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                     b"Sec-WebSocket-Version: 13\r\n"
                     b"X-Big: " + b"a" * 9000 + b"\r\n\r\n")
        got = await until_closed(reader, 10.0)
    finally:
        writer.close()
    assert got.startswith(b"HTTP/1.1 431 "), got[:200]


@pytest.mark.slow
async def test_timeouts_are_counted(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, KMS_GATEWAY_HEADER_TIMEOUT=str(TIMEOUT))
    async with stack(settings, roles=("gateway",)) as s, served(s.services) as (url, _, _):
        host, port = url.removeprefix("http://").split(":")
        for _ in range(2):
            reader, writer = await asyncio.open_connection(host, int(port))
            writer.write(b"GET / HTTP/1.1\r\n")
            await until_closed(reader, 20 * TIMEOUT)
            writer.close()
        metrics = (await s.client.get("/metrics")).text
    assert "kms_http_header_timeouts_total 2.0" in metrics

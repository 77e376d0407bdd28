"""``kms sim`` as a real process: prints its URL, answers, exits 0 on SIGTERM."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from websockets.sync.client import connect

from cli_support import first_line
from conftest import free_port
from krakenstream.core.book import Verdict
from krakenstream.core.session import BookSession

#: kms sim as a real process: a second or more each
pytestmark = pytest.mark.slow

KMS = str(Path(sys.executable).parent / "kms")


@pytest.fixture
def sim_process() -> Iterator[tuple[subprocess.Popen[str], int]]:
    port = free_port()
    proc = subprocess.Popen(
        [KMS, "sim", "--port", str(port), "--seed", "1", "--rate", "20",
         "--pairs", "ATOM/USD", "--synthetic", "2"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        yield proc, port
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(5)


def test_kms_sim_serves_then_exits_cleanly_on_sigterm(
    sim_process: tuple[subprocess.Popen[str], int],
) -> None:
    proc, port = sim_process
    url = first_line(proc)
    assert url == f"ws://127.0.0.1:{port}/v2"
    with connect(url, open_timeout=5) as ws:
        status = orjson.loads(ws.recv(timeout=5))
        assert status["data"][0]["system"] == "online"
        ws.send(orjson.dumps({"method": "subscribe", "req_id": 1, "params": {
            "channel": "book", "symbol": ["ATOM/USD", "SYN0002/USD"], "depth": 10}}).decode())
        frames = [orjson.loads(ws.recv(timeout=5)) for _ in range(6)]
        assert [f.get("success") for f in frames if "req_id" in f] == [True, True]
        assert any(f.get("channel") == "book" for f in frames)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(10) == 0


def test_kms_sim_refuses_a_busy_port_in_one_line() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = subprocess.run([KMS, "sim", "--port", str(port)],
                              capture_output=True, text=True, timeout=30)
    assert done.returncode == 1
    assert "cannot listen on 127.0.0.1" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(("args", "message"), [
    (["--replay", "/nonexistent/nope.jsonl"], "no such recording"),
    (["--pairs", "ETH/USD,btc-usd"], "not a pair of the form BASE/QUOTE: 'btc-usd'"),
    (["--rate", "0"], "--rate must be positive"),
    (["--faults", "drop,explode"], "--faults: unknown fault kind 'explode'; one of drop, "),
])
def test_kms_sim_refuses_bad_options_in_one_line(args: list[str], message: str) -> None:
    done = subprocess.run([KMS, "sim", "--port", "0", *args],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 1
    assert message in done.stderr
    assert "Traceback" not in done.stderr


def test_kms_sim_replays_a_recording(shared_recording: Path) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [KMS, "sim", "--port", str(port), "--replay", str(shared_recording), "--speed", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        url = first_line(proc)
        session = BookSession()
        verdicts: list[Verdict] = []
        with connect(url, open_timeout=5) as ws:
            ws.send('{"method":"subscribe","params":{"channel":"instrument"}}')
            ws.send('{"method":"subscribe","req_id":1,"params":{"channel":"book",'
                    '"symbol":["BTC/USD"],"depth":10}}')
            while len(verdicts) < 510:
                _, results = session.receive(ws.recv(timeout=5))
                verdicts.extend(r.verdict for r in results)
        assert verdicts == [Verdict.VERIFIED] * 510
        proc.send_signal(signal.SIGINT)
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)


def test_kms_sim_injects_the_fault_kinds_asked_for() -> None:
    port = free_port()
    proc = subprocess.Popen(
        [KMS, "sim", "--port", str(port), "--seed", "2", "--rate", "40", "--fault-rate", "5",
         "--faults", "corrupt"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        url = first_line(proc)
        session = BookSession()
        verdicts: list[Verdict] = []
        with connect(url, open_timeout=5) as ws:  # a drop or a stall would end this early
            ws.send('{"method":"subscribe","params":{"channel":"instrument"}}')
            ws.send('{"method":"subscribe","req_id":1,"params":{"channel":"book",'
                    '"symbol":["ETH/USD"],"depth":10}}')
            while Verdict.MISMATCH not in verdicts:
                _, results = session.receive(ws.recv(timeout=5))
                verdicts.extend(r.verdict for r in results)
        assert verdicts.count(Verdict.MISMATCH) == 1 and verdicts[0] is Verdict.VERIFIED
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)

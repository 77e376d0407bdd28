"""Patterns end to end, as a user runs them: ``kms sim --synthetic N`` and
``kms daemon run --pairs '*/USD'`` as child processes on loopback, then ``kms track '*/EUR'``.

The daemon must track exactly the simulator's online USD pairs (its listing has USD pairs in
maintenance, cancel_only, post_only and delisted too), spread over several connections, and
``/health``, ``/api/pairs`` and ``kms daemon status`` must show them.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from cli_support import PASSWORD, kms
from conftest import free_port
from krakenstream.cli import app
from krakenstream.cli.credentials import Credential, CredentialsFile
from krakenstream.cli.demo import Child, child_env, wait_healthy
from krakenstream.client import KmsClient
from krakenstream.errors import Conflict
from krakenstream.sim.market import Market
from krakenstream.sim.specs import DEFAULT_PAIRS, synthetic_specs

#: a daemon and a simulator as real processes
pytestmark = pytest.mark.slow

SYNTHETIC = 45
SEED = 7
PER_CONNECTION = 12


def listed(quote: str) -> set[str]:
    """The online pairs in ``quote`` that ``kms sim --synthetic 45 --seed 7`` lists."""
    market = Market([*DEFAULT_PAIRS, *synthetic_specs(SYNTHETIC, SEED)], SEED)
    return {p["symbol"] for p in market.instrument_data()["pairs"]
            if p["quote"] == quote and p["status"] == "online"}


def eventually(cond: Callable[[], bool], within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not cond():
        if time.monotonic() > deadline:
            pytest.fail(f"not within {within} s: {what}")
        time.sleep(0.1)


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    home = tmp_path_factory.mktemp("patterns")
    sim = Child("simulator", kms("sim", "--port", "0", "--seed", str(SEED), "--synthetic",
                                 str(SYNTHETIC), "--rate", "5"),
                child_env(home), home / "sim.log", stdout_pipe=True)
    proc = None
    try:
        sim_url = sim.read_line(20)
        port = free_port()
        env = child_env(home, KMS_GATEWAY_PORT=str(port), KMS_AUTH_BCRYPT_COST="4",
                        KMS_KRAKEN_PAIRS_PER_CONNECTION=str(PER_CONNECTION),
                        KMS_KRAKEN_CONNECT_SPACING="0.05", KMS_DAEMON_LOG_LEVEL="info")
        proc = Child("daemon", kms("daemon", "run", "--pairs", "*/USD", "--url", sim_url),
                     env, home / "daemon.log")
        url = f"http://127.0.0.1:{port}"
        with KmsClient(url, timeout=5) as client:
            wait_healthy(client, proc, 30)
        yield url, home
    finally:
        if proc is not None:
            proc.stop()
        sim.stop()


def admin_token(url: str) -> str:
    """A token of the daemon's first account (its admin: tracking needs one), registered by
    whichever test asks first."""
    with KmsClient(url, timeout=5) as client:
        with contextlib.suppress(Conflict):
            client.register("patterns@example.com", PASSWORD)
        return str(client.login("patterns@example.com", PASSWORD)["token"])


def feed_health(url: str) -> dict[str, Any]:
    with KmsClient(url, timeout=5) as client:
        health = client.health()
    feed = health["feed"]
    assert isinstance(feed, dict)
    return feed


def test_daemon_run_pairs_pattern_tracks_exactly_the_online_usd_pairs(
    daemon: tuple[str, Path],
) -> None:
    url, home = daemon
    usd = listed("USD")
    assert len(usd) < 14 + SYNTHETIC  # the listing has USD pairs that are not online

    def all_live() -> bool:
        return bool(feed_health(url)["states"] == {"live": len(usd)})

    eventually(all_live, 30, "every online USD pair live")
    # which pairs: /api/pairs lists them all (/health only a few of many, the rest counted)
    with KmsClient(url, admin_token(url), timeout=5) as client:
        assert {p["pair"] for p in client.pairs()} == usd
    feed = feed_health(url)
    assert len(feed["pairs"]) + feed["pairs_omitted"] == len(usd)
    conns = feed["connections"]
    assert len(conns) == -(-len(usd) // PER_CONNECTION)
    assert all(c["connected"] and c["state"] == "connected" for c in conns)
    assert sum(c["pairs"] for c in conns) == len(usd)
    assert feed["connection"]["connected"] and feed["connection"]["pairs"] == len(usd)
    log = (home / "daemon.log").read_text()
    assert "feed listing pairs=" in log and f"feed pool pairs={len(usd)} " in log

    status = CliRunner().invoke(app, ["daemon", "status"], env={
        "KMS_HOME": str(home), "KMS_SERVER": url, "COLUMNS": "200"})
    assert f"feed: {len(usd)} pairs ({len(usd)} live); {len(conns)} of {len(conns)} " \
           "connections up" in status.output, status.output


def test_kms_track_a_pattern_answers_with_what_it_added(
    daemon: tuple[str, Path], tmp_path: Path,
) -> None:
    url, _ = daemon
    token = admin_token(url)
    user = tmp_path / "client"
    CredentialsFile(user / "credentials.json").save(
        url, Credential("patterns@example.com", token))
    env = {"KMS_HOME": str(user), "KMS_SERVER": url, "COLUMNS": "200", "KMS_VERBOSE": ""}
    eur = listed("EUR")
    result = CliRunner().invoke(app, ["track", "*-eur"], env=env)
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"tracking */EUR: {len(eur)} pair(s) added: ")
    assert "pairs Kraken lists later are picked up" in result.output
    with KmsClient(url, token, timeout=5) as client:
        tracked = {p["pair"] for p in client.pairs()}
        assert eur <= tracked and listed("USD") <= tracked
        # the same pattern again adds nothing; a pair named twice is a conflict
        assert client.track("*/EUR")["added"] == []
    result = CliRunner().invoke(app, ["untrack", "*/EUR"], env=env)
    assert result.exit_code == 0 and f"({len(eur)} pair(s))" in result.output, result.output
    result = CliRunner().invoke(app, ["track", "BT*/USD"], env=env)
    assert result.exit_code == 1 and "pattern like */USD" in result.output

"""``kms`` start-up: what a command pays before it does anything, and the daemon's own start.

Wall time of whole processes, each run a fresh interpreter (nothing cached but the OS's page
cache), with a private ``KMS_HOME`` and no ``KMS_*`` of the user's:

* ``kms --version`` and ``kms --help``: the import of the command tree, typer's parsing and,
  for ``--help``, rich rendering every panel;
* ``python -c 'import krakenstream.cli'``: the import alone, what every ``kms`` command
  (and ``python -m krakenstream``, the way the daemon starts itself) pays first;
* ``kms daemon run`` to its ``/health`` answering with its own pid (every role, tracking two
  pairs of a private ``kms sim`` on loopback): the daemon's start, polled every 20 ms.

Prints min / median / max of each. Run:
``nice .venv/bin/python bench/cli_startup.py [--runs 20] [--daemon-runs 5] [--json]``.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

BIN = Path(sys.executable).parent
KMS = str(BIN / "kms")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def clean_env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KMS_")}
    env.update(KMS_HOME=str(home), COLUMNS="100", **extra)
    return env


def timed(args: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(args, env=env, check=True, stdin=subprocess.DEVNULL,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def summary(samples: list[float]) -> dict[str, float]:
    return {"min": min(samples), "median": statistics.median(samples), "max": max(samples),
            "runs": len(samples)}


def daemon_to_health(home: Path, sim_url: str) -> float:
    """Seconds from starting ``kms daemon run`` to its /health answering with its pid."""
    port = free_port()
    env = clean_env(home, KMS_KRAKEN_URL=sim_url, KMS_KRAKEN_PAIRS="ETH/USD,BTC/USD",
                    KMS_GATEWAY_PORT=str(port))
    with (home / "daemon.log").open("ab") as log:
        start = time.perf_counter()
        proc = subprocess.Popen([KMS, "daemon", "run"], env=env, stdin=subprocess.DEVNULL,
                                stdout=log, stderr=log)
    try:
        deadline = start + 60
        with httpx.Client(timeout=1) as client:
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"the daemon exited ({proc.returncode}); see "
                                       f"{home / 'daemon.log'}")
                try:
                    answer = client.get(f"http://127.0.0.1:{port}/health")
                    if answer.json().get("pid") == proc.pid:
                        return time.perf_counter() - start
                except (httpx.HTTPError, ValueError):
                    pass
                if time.perf_counter() > deadline:
                    raise RuntimeError("no /health within 60 s")
                time.sleep(0.02)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20, help="runs of each short command")
    parser.add_argument("--daemon-runs", type=int, default=5,
                        help="daemon starts (0: skip the daemon)")
    parser.add_argument("--json", action="store_true", help="one JSON line")
    args = parser.parse_args()

    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="kms-startup-") as tmp:
        home = Path(tmp)
        env = clean_env(home)
        commands = {
            "kms --version": [KMS, "--version"],
            "kms --help": [KMS, "--help"],
            "import krakenstream.cli": [str(BIN / "python"), "-c", "import krakenstream.cli"],
        }
        timed(commands["kms --version"], env)  # warm the page cache
        for name, cmd in commands.items():
            results[name] = summary([timed(cmd, env) for _ in range(args.runs)])

        if args.daemon_runs:
            sim_log = (home / "sim.log").open("ab")
            sim = subprocess.Popen([KMS, "sim", "--port", "0", "--seed", "7"], env=env,
                                   stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                   stderr=sim_log)
            try:
                assert sim.stdout is not None
                sim_url = sim.stdout.readline().decode().strip()
                if not sim_url.startswith("ws://"):
                    raise RuntimeError(f"kms sim printed {sim_url!r}; see {home / 'sim.log'}")
                samples = []
                for i in range(args.daemon_runs):
                    run_home = home / f"daemon-{i}"  # a fresh home: a first start each time
                    run_home.mkdir()
                    samples.append(daemon_to_health(run_home, sim_url))
                results["kms daemon run → /health"] = summary(samples)
            finally:
                sim.send_signal(signal.SIGTERM)
                sim.wait(timeout=30)
                sim_log.close()

    if args.json:
        print(json.dumps(results))
        return
    print(f"{'command':<28} {'runs':>4} {'min':>8} {'median':>8} {'max':>8}")
    for name, figures in results.items():
        print(f"{name:<28} {figures['runs']:>4} {figures['min']:>7.3f}s "
              f"{figures['median']:>7.3f}s {figures['max']:>7.3f}s")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Write docs/configuration.md from the settings code, so the reference cannot drift from it.

Keys, types and defaults come from ``krakenstream.config`` (``known_keys()``, the dataclass
defaults, ``CHOICES``, ``MINIMUM``, ``MAXIMUM``, ``env_name()``); only the one-line meaning of
each key is written here, and a key without one is an error, so a new setting cannot ship
undocumented. ``tests/test_docs.py`` checks that the committed page equals this output.

    .venv/bin/python scripts/gen_config_reference.py            # rewrite the page
    .venv/bin/python scripts/gen_config_reference.py --check    # exit 1 if it is stale
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from krakenstream.config import (
    CHOICES,
    MAXIMUM,
    MINIMUM,
    Settings,
    env_name,
    known_keys,
)

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "configuration.md"

#: what each key is for (the code gives everything else)
MEANINGS: dict[str, str] = {
    "kraken.url": "Kraken WebSocket v2 endpoint. The local simulator is `ws://127.0.0.1:PORT/v2` "
    "(`kms sim`).",
    "kraken.pairs": "Pairs tracked from the start, `BASE/QUOTE`, or patterns over what Kraken "
    "lists: `*` (every online pair), `*/USD`, `BTC/*`; pairs Kraken adds or delists are picked "
    "up or dropped as it runs. More can be added and removed at run time (`kms track`, "
    "`POST /api/pairs`).",
    "kraken.depth": "Book depth subscribed and kept per pair; every snapshot carries this many "
    "levels a side.",
    "kraken.snapshot_interval": "Seconds between published snapshots, aligned to wall-clock "
    "multiples (no drift). Published also when nothing changed.",
    "kraken.heartbeat_timeout": "No frame at all (heartbeats included) for this long: the feed "
    "is stale and the connection is replaced.",
    "kraken.subscribe_batch": "Symbols per subscribe request.",
    "kraken.subscribe_pacing": "Seconds between two subscribe requests (Kraken rate-limits "
    "them).",
    "kraken.queue_size": "Frames buffered between the socket reader and the books. When full, "
    "the connection is dropped and every book is rebuilt from a fresh full book from Kraken.",
    "kraken.backoff_initial": "First reconnect delay in seconds; it doubles on each failure, "
    "with full jitter.",
    "kraken.backoff_max": "Ceiling of the reconnect delay in seconds.",
    "kraken.ack_timeout": "Seconds a subscribe or unsubscribe may stay unanswered; then the "
    "connection is replaced.",
    "kraken.open_timeout": "Seconds the WebSocket opening handshake may take.",
    "kraken.pairs_per_connection": "The most pairs one WebSocket connection carries. More "
    "pairs open more connections, each reconnecting on its own: a cut connection resyncs only "
    "its pairs. Kraken documents no cap; other clients use 20 to 200.",
    "kraken.max_pairs": "The most pairs this orderbook process tracks, named and brought in by "
    "patterns together. Tracking one more answers 409; a pattern that would go past it is "
    "refused whole; pairs a pattern brings in later past it are left out and counted "
    "(`/health` `feed.over_max_pairs`).",
    "kraken.refused_keep": "A pair Kraken refuses (it does not list it) is dropped at once, "
    "never asked for again on a reconnect, and stays listed by `/api/pairs` in `error` with "
    "Kraken's words for this many seconds (the newest 100) so that whoever tracked it can "
    "read why; `kms untrack` forgets it sooner, `kms track` tries again.",
    "kraken.connect_limit": "Connection attempts of all the feed's connections together in "
    "any 10 minutes. Kraken bans an address for 10 minutes above about 150.",
    "kraken.connect_spacing": "Least seconds between two connection attempts of the feed, so "
    "connections cut together reconnect one after the other.",
    "kraken.shard": "`INDEX/COUNT`: this orderbook process tracks only the pairs whose CRC32 "
    "modulo COUNT is INDEX. Empty: every pair. See [operations](operations.md#scaling-by-pairs).",
    "gateway.host": "Address the gateway listens on. `127.0.0.1` keeps it on this machine; "
    "read [security](security.md#binding-and-exposure) before changing it.",
    "gateway.port": "TCP port of the gateway (`0`: any free port).",
    "gateway.max_body_bytes": "Larger request bodies are refused with 413.",
    "gateway.ws_backlog": "Snapshots queued for one WebSocket client; a client further behind "
    "is disconnected (close code 1013) instead of growing memory.",
    "gateway.trusted_proxies": "Reverse proxies (IP addresses or CIDR networks) whose "
    "`X-Forwarded-For` and `X-Forwarded-Proto` are believed. Empty: none, the TCP peer is the "
    "client. See [security](security.md#proxies).",

    "gateway.header_timeout": "Seconds a connection may take to send a request's headers, "
    "counted from when it opens or its last answer ends, however slowly bytes arrive; then "
    "it gets 408 and is closed (`kms_http_header_timeouts`).",
    "gateway.max_ws_clients": "WebSocket streams this gateway serves at once; one more is "
    "accepted and closed at once with code 4429 (`wire.TOO_MANY_STREAMS`) and counted "
    "(`kms_ws_refused`). 5,000 unbounded streams took 200 MB and slowed every reader's "
    "delay from 20 ms to 739 ms.",
    "gateway.max_ws_per_user": "Streams one account may hold open at once (a dashboard tab "
    "holds one, `kms stream` one per pair); past it: close 4429.",
    "gateway.max_summaries": "`GET /api/analysis/summary` and `/api/analysis/bars` answers "
    "computed at once; one more is answered 503 with `Retry-After` at once "
    "(`kms_heavy_reads_refused`). 20 summaries at once took 1.6 GB that the process kept.",
    "gateway.max_exports": "`GET /api/analysis/history` answers streamed at once (every "
    "format: Parquet and wide CSV too, `kms export`); one more is answered 503 with "
    "`Retry-After`.",
    "bus.backend": "`memory`: in-process fan-out, every role in one process. `kafka`: roles in "
    "separate processes or hosts.",
    "bus.queue_size": "The least a queue of the in-process bus holds. A live tap (WebSocket "
    "push, latest cache) holds two ticks of every pair or this, and drops its oldest beyond.",
    "bus.buffer_ticks": "Whole publish ticks of every tracked pair the path to history holds "
    "(the in-process analysis group's queue, the Kafka producer's buffer): pairs x this "
    "snapshots, about 3 KB each in memory. Beyond it the oldest are dropped, counted, logged "
    "once, and marked `gap_before` in history.",
    "store.backend": "Where the snapshot history lives: `sqlite` (embedded) or `redis`.",
    "store.history_limit": "Newest snapshots kept per pair; older ones are trimmed on write.",
    "store.path": "SQLite history file. Empty: `<data dir>/history.sqlite3`.",
    "archive.enabled": "Keep every stored snapshot beyond the window too, in a Parquet archive "
    "(the `analysis` role writes it; history reads span it).",
    "archive.path": "The archive's folder (Hive-partitioned by pair and UTC date). Empty: "
    "`<data dir>/archive`. Split deployments share it between the `analysis` and `gateway` "
    "roles.",
    "archive.keep_days": "Whole UTC days kept after the day ends (date partitions are deleted "
    "whole); 0 keeps everything.",
    "archive.roll_rows": "A file is closed at each UTC hour, or after this many snapshots of one "
    "pair (at most half of `store.history_limit`).",
    "users.backend": "Where accounts live: `sqlite` (embedded) or `mysql` (MySQL or MariaDB).",
    "users.path": "SQLite users file (created 0600). Empty: `<data dir>/users.sqlite3`.",
    "auth.secret": "HS256 token signing secret, at least 32 bytes. Empty: generated once into "
    "`<data dir>/secret` (0600). Give every gateway of one deployment the same value.",
    "auth.token_ttl": "Lifetime of a login token, seconds.",
    "auth.issuer": "JWT `iss` claim written and required.",
    "auth.audience": "JWT `aud` claim written and required.",
    "auth.bcrypt_cost": "bcrypt work factor (2^cost rounds) for new password hashes.",
    "auth.min_password_length": "Shortest password accepted at registration, in characters "
    "(bcrypt reads at most 72 bytes: longer ones are refused).",
    "auth.login_max_failures": "Failed logins allowed per email and per client address within "
    "`auth.login_window`; then 429 with `Retry-After`.",
    "auth.login_window": "Seconds over which failed logins are counted.",
    "auth.registration": "`open`: anyone who reaches the gateway may register (the first "
    "account is admin, later ones readers). `closed`: only the first account of an empty store; "
    "after that an admin adds accounts (`kms user add`).",
    "auth.registration_max": "Registrations allowed per client address within "
    "`auth.registration_window`, successful or not; then 429 with `Retry-After`.",
    "auth.registration_window": "Seconds over which registrations are counted.",
    "auth.hash_queue": "Password hashes that may wait for a bcrypt worker, in each lane (logins "
    "first, then registrations); past it the request is answered 503 with `Retry-After`.",
    "auth.access_ttl": "Seconds an account's role, disabled flag and revoked tokens are reused "
    "before the users store is asked again: a change made through another gateway applies "
    "within this bound (at once on the gateway that made it).",
    "kafka.bootstrap": "Brokers, `host:port[,host:port...]`.",
    "kafka.topic": "Topic of the snapshots (key = pair, value = the snapshot's compact form, "
    "as history stores it; JSON values are still read).",
    "kafka.group": "Consumer group of the analysis role: processes in one group share the "
    "partitions.",
    "kafka.session_timeout_ms": "A consumer silent this long leaves the group and its "
    "partitions go to the others.",
    "kafka.buffer_size": "The least the producer's buffer holds while the broker cannot be "
    "reached (it grows to `bus.buffer_ticks` ticks of every pair); when full the oldest are "
    "dropped, counted, and marked `gap_before` in history.",
    "kafka.client_id": "Client id shown in the broker's logs and metrics.",
    "kafka.partitions": "Partitions of the topic when the bus creates it (an existing topic is "
    "left as it is): the most analysis processes that can share the work.",
    "kafka.replication_factor": "Replicas of the topic when the bus creates it (3 on a "
    "production cluster).",
    "redis.url": "`redis://[:password@]host:port/db` (`rediss://` for TLS).",
    "redis.prefix": "Prefix of every key, so several deployments can share one Redis.",
    "mysql.url": "`mysql://user:password@host:port/database`, user and password "
    "percent-encoded. The database is created if missing.",
    "daemon.roles": "Roles this process runs: `orderbook`, `analysis`, `gateway`.",
    "daemon.log_level": "Least severe log level written.",
    "daemon.health_host": "Address of the health listener (`daemon.health_port`): "
    "`127.0.0.1` keeps it on this machine; `0.0.0.0` in a container, for its scraper.",
    "daemon.health_port": "A process that runs no gateway (`--roles orderbook`, `analysis`) "
    "serves `GET /health` and `GET /metrics` on this port, so each process of a split "
    "deployment can be probed and scraped. `0`: no listener. Ignored with the gateway role, "
    "which serves both itself. See [operations](operations.md#what-to-watch).",
}

#: environment variables that are not ``section.key`` settings
TOP_LEVEL_ENV: dict[str, str] = {
    "KMS_HOME": "One folder for every file kms writes (config, databases, secret, pid and log "
    "files, credentials); same as `--home`. Several instances never collide.",
    "KMS_CONFIG": "The TOML file to read; same as `--config`.",
    "KMS_SERVER": "The gateway the CLI talks to, e.g. `http://10.0.0.5:3000` (default: the "
    "local daemon's address).",
    "KMS_VERBOSE": "`1`: errors print their traceback (same as `--verbose`).",
}

_TYPE_NAMES = {int: "integer", float: "number", str: "string", bool: "boolean",
               list[str]: "list of strings"}


def _toml(value: Any) -> str:
    """A default as it is written in config.toml."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return repr(value)


def _allowed(dotted: str) -> str:
    choices = CHOICES.get(dotted)
    if choices is not None:
        return " \\| ".join(f"`{c}`" for c in choices)
    lo, hi = MINIMUM.get(dotted), MAXIMUM.get(dotted)
    if lo is not None and hi is not None:
        return f"{lo:g} to {hi:g}"
    if lo is not None:
        return f"≥ {lo:g}"
    return ""


def _default(dotted: str) -> Any:
    section, key = dotted.split(".", 1)
    return getattr(getattr(Settings(), section), key)


def render() -> str:
    keys = known_keys()
    missing = sorted(set(keys) - set(MEANINGS))
    if missing:
        raise SystemExit(f"no meaning written for {', '.join(missing)}: add it to MEANINGS "
                         f"in {Path(__file__).name}")
    stale = sorted(set(MEANINGS) - set(keys))
    if stale:
        raise SystemExit(f"MEANINGS documents keys the code does not know: {', '.join(stale)}")
    out = [
        "# Configuration reference",
        "",
        "<!-- generated by scripts/gen_config_reference.py from krakenstream.config: "
        "do not edit by hand -->",
        "",
        "Every setting is `section.key`. It can be set, lowest precedence first, by its "
        "default, the TOML file, the environment (`KMS_<SECTION>_<KEY>`) and a command-line "
        "flag where the command has one. A key the code does not know, in the file or in the "
        "environment, is an error that names it (with a suggestion when one is close), never "
        "a silent default; a value of the wrong type or out of range is an error too.",
        "",
        "- **The file**: `--config FILE`, else `KMS_CONFIG`, else `<config dir>/config.toml` "
        "if it exists. `config.example.toml` at the root of the repository lists every key "
        "with its default.",
        "- **The environment**: lists are comma-separated (`KMS_KRAKEN_PAIRS=ETH/USD,BTC/USD`); "
        "numbers as digits; text as is.",
        "- **Folders**: with `KMS_HOME` (or `--home`) the config, data and state directories "
        "are all that one folder. Without it: `$XDG_CONFIG_HOME/krakenstream` "
        "(`~/.config/krakenstream`) for `config.toml` and `credentials.json`, "
        "`$XDG_DATA_HOME/krakenstream` (`~/.local/share/krakenstream`) for the SQLite files "
        "and `secret`, `$XDG_STATE_HOME/krakenstream` (`~/.local/state/krakenstream`) for "
        "`daemon.pid` and `daemon.log`.",
        "",
        "## Variables that are not settings",
        "",
        "| variable | meaning |",
        "| --- | --- |",
    ]
    out += [f"| `{name}` | {text} |" for name, text in TOP_LEVEL_ENV.items()]
    section = ""
    for dotted, typ in keys.items():
        sect, _, key = dotted.partition(".")
        if sect != section:
            section = sect
            out += ["", f"## [{sect}]", "",
                    "| key | type | default | allowed | environment | meaning |",
                    "| --- | --- | --- | --- | --- | --- |"]
        out.append(
            f"| `{dotted}` | {_TYPE_NAMES[typ]} | `{_toml(_default(dotted))}` | "
            f"{_allowed(dotted)} | `{env_name(dotted)}` | {MEANINGS[dotted]} |"
        )
    out.append("")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="exit 1 if docs/configuration.md differs from the code")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = PAGE.read_text() if PAGE.exists() else ""
        if current != text:
            sys.stderr.write(f"{PAGE} is stale: run {Path(__file__).name}\n")
            return 1
        return 0
    PAGE.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

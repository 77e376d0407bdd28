"""The docs under docs/ against the code they describe.

The configuration reference must be exactly what ``scripts/gen_config_reference.py`` makes
from ``krakenstream.config``; every setting, environment variable and ``kms`` command named
anywhere in the docs must exist; the error messages quoted in troubleshooting.md must be
the ones the code prints (produced here for real where that is cheap, found in the source
otherwise); and every relative link and anchor must resolve.
"""

from __future__ import annotations

import importlib.util
import os
import re
import socket
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import redis
import typer.main

from conftest import free_port
from krakenstream import cli
from krakenstream.config import env_name, known_keys, load_settings
from krakenstream.errors import KmsError

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PAGES = ("README.md", "architecture.md", "configuration.md", "operations.md", "security.md",
         "troubleshooting.md")
SECTIONS = sorted({key.split(".")[0] for key in known_keys()})
TOP_LEVEL_ENV = ("KMS_HOME", "KMS_CONFIG", "KMS_SERVER", "KMS_VERBOSE")
#: wrong on purpose: the troubleshooting page shows what a typo looks like
MISSPELT = {"KMS_GATEWAY_PROT", "KMS_GATWAY_PORT", "KMS_SOMETHING", "gateway.prot"}
#: file names that look like ``section.key``
FILE_NAMES = {"daemon.pid", "daemon.log"}


def page(name: str) -> str:
    return (DOCS / name).read_text()


def all_docs() -> dict[str, str]:
    texts = {name: page(name) for name in PAGES}
    texts["../README.md"] = (ROOT / "README.md").read_text()
    return texts


@pytest.fixture(scope="module")
def generator() -> ModuleType:
    path = ROOT / "scripts" / "gen_config_reference.py"
    spec = importlib.util.spec_from_file_location("gen_config_reference", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# -- configuration reference -------------------------------------------------------------------


def test_the_configuration_page_is_generated_from_the_code(generator: ModuleType) -> None:
    assert page("configuration.md") == generator.render(), (
        "docs/configuration.md is stale: run .venv/bin/python scripts/gen_config_reference.py")


def test_every_setting_is_documented_once_with_its_environment_name() -> None:
    rows = re.findall(r"^\| `([a-z_]+\.[a-z_]+)` \|.*\| `(KMS_[A-Z0-9_]+)` \|",
                      page("configuration.md"), flags=re.M)
    documented = [key for key, _ in rows]
    assert sorted(documented) == sorted(known_keys()), "each key exactly once"
    for key, env in rows:
        assert env == env_name(key)


def test_the_variables_that_are_not_settings_are_documented_and_accepted(tmp_path: Path) -> None:
    text = page("configuration.md")
    for name in TOP_LEVEL_ENV:
        assert f"| `{name}` |" in text
    env = {"KMS_HOME": str(tmp_path), "KMS_SERVER": "http://127.0.0.1:1", "KMS_VERBOSE": "1"}
    load_settings(env=env)  # none of them is taken for a misspelt setting


def test_every_setting_and_variable_named_in_the_docs_exists(tmp_path: Path) -> None:
    keys = set(known_keys())
    envs = {env_name(k) for k in keys} | set(TOP_LEVEL_ENV)
    section = "|".join(SECTIONS)
    for name, text in all_docs().items():
        for key in re.findall(rf"`((?:{section})\.[a-z_]+)`", text):
            assert key in keys | MISSPELT | FILE_NAMES, f"{name}: `{key}` is not a setting"
        for var in re.findall(r"\bKMS_[A-Z0-9_]*[A-Z0-9]\b", text):
            assert var in envs or var in MISSPELT, f"{name}: {var} is not a setting"
    # and the typos shown on purpose really are refused
    for typo in MISSPELT:
        if typo.startswith("KMS_"):
            with pytest.raises(KmsError, match=typo):
                load_settings(env={typo: "1", "KMS_HOME": str(tmp_path)})
        else:
            section_name, key = typo.split(".")
            config = tmp_path / "typo.toml"
            config.write_text(f"[{section_name}]\n{key} = 1\n")
            with pytest.raises(KmsError, match=re.escape(typo)):
                load_settings(config, env={"KMS_HOME": str(tmp_path)})


# -- commands ------------------------------------------------------------------------------------


def _code_spans(text: str) -> list[str]:
    """Inline code and the lines of fenced blocks: where commands are written to be typed."""
    blocks = re.findall(r"^```[a-z]*\n(.*?)^```", text, flags=re.M | re.S)
    rest = re.sub(r"^```[a-z]*\n.*?^```", "", text, flags=re.M | re.S)
    lines = [ln for block in blocks for ln in block.splitlines()]
    return lines + re.findall(r"`([^`\n]+)`", rest)


def _options(command: Any) -> set[str]:
    return {opt for param in command.params for opt in param.opts}


def test_every_kms_command_and_option_in_the_docs_exists() -> None:
    # typer's (vendored) click objects: a group has ``commands``, every command ``params``
    root = typer.main.get_command(cli.app)
    commands: dict[str, Any] = root.commands  # type: ignore[attr-defined]
    seen = 0
    for name, text in all_docs().items():
        for span in _code_spans(text):
            for m in re.finditer(r"(?:^|[\s(=])kms ((?:[a-z]+)(?: [a-z]+)?)((?: [^|;&)`]*)?)",
                                 span):
                words = m[1].split()
                command = commands.get(words[0])
                assert command is not None, f"{name}: `kms {words[0]}` is not a command"
                group = getattr(command, "commands", None)
                if group is not None:
                    command = group.get(words[1]) if len(words) > 1 else None
                    assert command is not None, f"{name}: `kms {m[1]}` is not a command"
                opts = _options(command) | _options(root)
                for opt in re.findall(r"(?<![\w-])(--[a-z][a-z-]*)", m[2]):
                    assert opt in opts, f"{name}: `kms {m[1]}` has no option {opt}"
                seen += 1
    assert seen > 10


# -- troubleshooting: the messages are the code's -------------------------------------------------

#: literal parts of messages and log lines quoted in troubleshooting.md, each to be found in
#: the source too (messages that are cheap to produce are produced in the tests below instead)
FROM_THE_SOURCE = [
    "cannot reach the daemon at ",
    "is a daemon running there? check --server or KMS_SERVER",
    "did not answer within",
    "it is running but busy: try again; kms daemon status and its log say more",
    "GET /api/pairs lists the tracked pairs",
    "no daemon is running here, and none answers at ",
    "not logged in to ",
    "your session on ",
    "token has expired",
    "token signature is invalid",
    "missing bearer token: send Authorization: Bearer <token>",
    "invalid email or password",
    "feed resync pair=",
    "checksum mismatch (got ",
    "crossed book",
    "feed connection lost url=",
    "no frame for ",
    "feed connect failed url=",
    "feed exchange status system=",
    "feed queue full size=",
    "action=reconnect-and-resync-all",
    "feed subscribe refused pair=",
    "Currency pair not supported ",
    " is not a pair like ETH/USD or ETH-USD",
    "no snapshot of ",
    "; snapshots are buffered and retried, Kafka ",
    "client errors counted until it is back",
    " reachable again after ",
    " Kafka client errors counted meanwhile",
    " more like it held back)",
    "Kafka refused to create topic ",
    "history store unavailable (",
    "refused user ",
    "check the user and password in mysql.url",
    "a daemon is already running (pid ",
    "belongs to another user",
    "is not a regular file",
    " are needed",
]


@pytest.fixture(scope="module")
def source() -> str:
    return "\n".join(p.read_text() for p in sorted((ROOT / "src").rglob("*.py")))


@pytest.mark.parametrize("fragment", FROM_THE_SOURCE)
def test_quoted_messages_are_in_the_source(fragment: str, source: str) -> None:
    assert fragment in page("troubleshooting.md"), "quoted in the troubleshooting page"
    assert fragment in source, "and printed by the code"


def _printed(exc: KmsError) -> str:
    """The lines the CLI prints for an error (cli/common.py: error, then hint)."""
    lines = f"error: {exc}"
    return lines + (f"\nhint: {exc.hint}" if exc.hint else "")


@pytest.mark.parametrize(
    "env",
    [{"KMS_GATEWAY_PROT": "3000"}, {"KMS_GATEWAY_PORT": "3000x"},
     {"KMS_BUS_BACKEND": "rabbit"}, {"KMS_KRAKEN_DEPTH": "20"},
     {"KMS_KRAKEN_SHARD": "2/2"}, {"KMS_GATWAY_PORT": "3000"}],
)
def test_configuration_errors_read_as_the_page_says(env: dict[str, str], tmp_path: Path) -> None:
    with pytest.raises(KmsError) as info:
        load_settings(env={**env, "KMS_HOME": str(tmp_path)})
    text = page("troubleshooting.md")
    assert str(info.value) in text
    if "PROT" in next(iter(env)) or "GATWAY" in next(iter(env)):
        assert _printed(info.value) in text  # the hint too: "did you mean gateway.port?"


def test_a_misspelt_section_in_the_file_reads_as_the_page_says(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text("[gatway]\nport = 3100\n")
    with pytest.raises(KmsError) as info:
        load_settings(config, env={"KMS_HOME": str(tmp_path)})
    printed = _printed(info.value).replace(str(config),
                                           "/home/me/.config/krakenstream/config.toml")
    assert printed == ("error: unknown section [gatway] in "
                       "/home/me/.config/krakenstream/config.toml\nhint: did you mean [gateway]?")
    assert printed in page("troubleshooting.md")


def test_the_secret_file_error_reads_as_the_page_says(tmp_path: Path) -> None:
    from krakenstream.daemon.wiring import secret as load_secret

    s = load_settings(env={"KMS_HOME": str(tmp_path)})
    secret = s.paths.secret_file
    load_secret(s)  # generated 0600
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    secret.chmod(0o644)
    with pytest.raises(KmsError) as info:
        load_secret(s)
    shown = "/home/me/.local/share/krakenstream/secret"
    assert _printed(info.value).replace(str(secret), shown) in page("troubleshooting.md")


def test_a_symlinked_secret_file_reads_as_the_page_says(tmp_path: Path) -> None:
    from krakenstream.daemon.wiring import secret as load_secret

    s = load_settings(env={"KMS_HOME": str(tmp_path / "home")})
    target = tmp_path / "elsewhere"
    target.write_text("x" * 64)
    s.paths.secret_file.parent.mkdir(parents=True)
    s.paths.secret_file.symlink_to(target)
    with pytest.raises(KmsError) as info:
        load_secret(s)
    assert str(info.value) == f"the secret file {s.paths.secret_file} is not a regular file"
    flat = " ".join(page("troubleshooting.md").split())
    assert "`the secret file ... is not a regular file` (a symlink or a folder)" in flat


def test_the_port_in_use_error_reads_as_the_page_says() -> None:
    from krakenstream.daemon.process import bind_socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        with pytest.raises(KmsError) as info:
            bind_socket("127.0.0.1", port).close()
    printed = _printed(info.value).replace(f"port {port} ", "port 3000 ")
    assert printed in page("troubleshooting.md")


def test_the_second_daemon_error_reads_as_the_page_says(tmp_path: Path) -> None:
    from krakenstream.daemon.process import StateLock

    first = StateLock(tmp_path / "daemon.pid")
    first.acquire()
    try:
        with pytest.raises(KmsError) as info:
            StateLock(tmp_path / "daemon.pid").acquire()
    finally:
        first.release()
    printed = _printed(info.value).replace(str(tmp_path), "/home/me/.local/state/krakenstream")
    printed = printed.replace(f"(pid {os.getpid()})", "(pid 4242)")
    assert printed in page("troubleshooting.md")


@pytest.mark.slow
async def test_unreachable_store_errors_read_as_the_page_says() -> None:
    from krakenstream.store import RedisHistoryStore
    from krakenstream.users.mysql import MysqlUserStore

    text = page("troubleshooting.md")
    port = free_port()
    with pytest.raises(KmsError) as info:
        await RedisHistoryStore(f"redis://127.0.0.1:{port}/0").open()
    # the part before the driver's own words is ours
    ours = str(info.value).split(": ", 1)[0].replace(str(port), "6379")
    assert f"error: {ours}: " in text
    store = MysqlUserStore(f"mysql://kms:pw@127.0.0.1:{port}/krakenstream")
    with pytest.raises(KmsError) as info:
        await store.open()
    ours = str(info.value).split(": ", 1)[0].replace(str(port), "3306")
    assert f"error: {ours}: " in text
    assert f"hint: {info.value.hint}" in text


# -- module map --------------------------------------------------------------------------------


def test_the_module_map_names_what_exists_and_every_package() -> None:
    """architecture.md's module map: every path it names exists, and every package and
    top-level module of src/krakenstream is in it (a module moved is a map to update)."""
    text = page("architecture.md")
    section = text.split("## Module map", 1)[1].split("\n## ", 1)[0]
    src = ROOT / "src" / "krakenstream"
    named = set(re.findall(r"`([a-z_]+(?:/[a-z_]*)*(?:\.py|/))`", section))
    assert len(named) > 20
    for path in named:
        base = ROOT if path.startswith(("src/", "tests/")) else src
        assert (base / path).exists(), f"architecture.md names {path}, which does not exist"
    for entry in src.iterdir():
        if entry.is_dir() and (entry / "__init__.py").exists():
            assert any(n.startswith(f"{entry.name}/") for n in named), (
                f"the module map lacks {entry.name}/")
        elif entry.suffix == ".py" and entry.stem not in ("__init__", "__main__"):
            assert entry.name in named, f"the module map lacks {entry.name}"


# -- compose and operations ---------------------------------------------------------------------


def test_the_env_file_recipe_sets_every_variable_compose_requires() -> None:
    compose = (ROOT / "docker-compose.yml").read_text()
    required = set(re.findall(r"\$\{([A-Z0-9_]+):\?", compose))
    recipe = re.search(r"cat > \.env <<EOF\n(.*?)\n\s*EOF", page("operations.md"), flags=re.S)
    assert recipe is not None
    assert set(re.findall(r"^\s*([A-Z0-9_]+)=", recipe[1], flags=re.M)) == required


def test_the_users_backup_recipe_writes_a_private_copy(tmp_path: Path) -> None:
    """operations.md's SQLite backup of the accounts, run as written: the copy holds bcrypt
    hashes, so it must be 0600 whatever the shell's umask (it was 0644)."""
    row = next(line for line in page("operations.md").splitlines()
               if line.startswith("| accounts (SQLite) |"))
    command = next(span for span in re.findall(r"`([^`]+)`", row) if ".backup" in span)
    db = tmp_path / "users.sqlite3"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE users (email TEXT, password_hash TEXT)")
        conn.execute("INSERT INTO users VALUES ('a@example.com', '$2b$12$...')")
    conn.close()
    db.chmod(0o600)
    done = subprocess.run(["bash", "-c", f"umask 022; {command}"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    copy = tmp_path / "users-backup.sqlite3"
    assert stat.S_IMODE(copy.stat().st_mode) == 0o600
    with sqlite3.connect(copy) as conn:
        assert conn.execute("SELECT email FROM users").fetchall() == [("a@example.com",)]
    conn.close()


def test_the_redis_measurement_command_runs_and_cleans_up(redis_server_url: str) -> None:
    """The command operations.md gives for the memory figures, on 300 snapshots, not 10,000."""
    m = re.search(r"python - <<'EOF'\n(.*?)\nEOF", page("operations.md"), flags=re.S)
    assert m is not None and "range(10_000)" in m[1]
    code = m[1].replace("range(10_000)", "range(300)")
    assert "redis://127.0.0.1:6379/0" in code and redis_server_url == "redis://127.0.0.1:6379/0"
    done = subprocess.run([sys.executable, "-"], input=code, text=True, capture_output=True,
                          cwd=ROOT, timeout=60)
    assert done.returncode == 0, done.stderr
    *lines, cleanup = done.stdout.splitlines()
    assert [ln.split()[:2] for ln in lines] == [
        [f"depth={d}", "count=300"] for d in (10, 25, 100)]
    per_snapshot = [int(re.search(r"\((\d+) B/snapshot\)", ln)[1]) for ln in lines]  # type: ignore[index]
    assert per_snapshot == sorted(per_snapshot), "deeper books take more memory"
    # three sorted sets and the set of pairs, and nothing left under its prefix
    deleted = re.fullmatch(r"deleted 4 keys under (kms-measure-[0-9a-f]{8}:)", cleanup)
    assert deleted is not None, cleanup
    client = redis.Redis.from_url(redis_server_url)
    try:
        assert not list(client.scan_iter(match=deleted[1] + "*"))
    finally:
        client.close()


# -- links ---------------------------------------------------------------------------------------


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def _anchors(text: str) -> set[str]:
    body = re.sub(r"^```.*?^```", "", text, flags=re.M | re.S)
    return {_slug(h) for h in re.findall(r"^#{1,6} (.+)$", body, flags=re.M)}


def test_the_index_links_every_page() -> None:
    index = page("README.md")
    for name in PAGES[1:]:
        assert f"]({name})" in index
    assert "](docs/README.md)" in (ROOT / "README.md").read_text()


def test_every_relative_link_and_anchor_resolves() -> None:
    checked = 0
    for name, text in all_docs().items():
        here = (DOCS / name).parent
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"[a-z]+:", target):
                continue  # an absolute URL
            path_part, _, anchor = target.partition("#")
            file = (here / path_part).resolve() if path_part else (DOCS / name).resolve()
            assert file.exists(), f"{name}: broken link {target}"
            if anchor:
                assert anchor in _anchors(file.read_text()), f"{name}: no anchor {target}"
            checked += 1
    assert checked > 20


def test_pages_quote_no_secret_like_value() -> None:
    for name, text in all_docs().items():
        assert not re.search(r"\b[0-9a-f]{40,}\b", text), f"{name} holds a hex secret"


# -- the archive's one-liners ------------------------------------------------------------------


@pytest.mark.slow
def test_the_archive_one_liners_run_over_an_archive(tmp_path: Path) -> None:
    """operations.md's DuckDB, pandas and polars lines, run in a folder holding an archive of
    BTC/USD and PEPE/USD on 2026-11-25: each reads it and counts what is there, and DuckDB's
    whole-folder read keeps PEPE's nine decimals (the union_by_name trap)."""
    from archive_support import sim_snapshots
    from krakenstream.store.archive import Archive

    block = page("operations.md").split("<!-- archive one-liners", 1)[1]
    code = re.search(r"```python\n(.*?)\n```", block, flags=re.S)
    assert code is not None
    lines = code[1].splitlines()
    assert [ln.split(";")[0] for ln in lines] == [
        "import duckdb", "import pandas as pd", "import polars as pl"]
    day = 1_795_564_800_000  # 2026-11-25T00:00:00Z
    snaps = [*sim_snapshots("BTC/USD", 120, start=day), *sim_snapshots("PEPE/USD", 60,
                                                                       start=day)]
    Archive(tmp_path / "archive", writer_id="docs").write(snaps)
    out = []
    for line in lines:
        done = subprocess.run([sys.executable, "-c", line], cwd=tmp_path, text=True,
                              capture_output=True, timeout=120)
        assert done.returncode == 0, f"{line}\n{done.stderr}"
        out.append(done.stdout)
    duck, pandas, polars = out
    assert re.search(r"BTC/USD\s*│\s*2026-11-25\s*│\s*120\b", duck)
    assert re.search(r"PEPE/USD\s*│\s*2026-11-25\s*│\s*60\b", duck)
    assert str(min(s.mid for s in snaps if s.pair == "PEPE/USD")) in duck
    assert "[120 rows x 4 columns]" in pandas
    assert "shape: (120, 2)" in polars


# -- docs that once disagreed with the code (issue 17 item 7) ------------------------------------


def test_the_readme_client_table_names_every_client_command() -> None:
    from krakenstream.cli.commands import ACCOUNTS, DATA

    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Client commands", 1)[1]
    table = next(chunk for chunk in section.split("\n\n") if chunk.startswith("| command"))
    root = typer.main.get_command(cli.app)
    for name, command in root.commands.items():  # type: ignore[attr-defined]
        if getattr(command, "rich_help_panel", None) in (DATA, ACCOUNTS):
            assert f"`kms {name}" in table, f"README's client table lacks kms {name}"


def test_the_readme_names_every_state_the_live_view_shows() -> None:
    from krakenstream.cli.render import STATE_STYLES
    from krakenstream.feed.status import PairState

    readme = (ROOT / "README.md").read_text()
    paragraph = " ".join(readme.split("**Live view.**", 1)[1].split("\n\n", 1)[0].split())
    listed = re.search(r"feed state \(([^)]*)\)", paragraph)
    assert listed is not None
    named = set(re.findall(r"`([a-z]+)`", listed[1]))
    # the feed's states, the pair the daemon no longer tracks (the view's own word), and
    # what a gateway says of a pair another process tracks (daemon/gateway/pairs.py)
    shown = {s.value for s in PairState} | {"untracked", "unknown"}
    assert named == shown
    assert {s.value for s in PairState} | {"untracked"} <= set(STATE_STYLES)
    gateway_pairs = (ROOT / "src/krakenstream/daemon/gateway/pairs.py").read_text()
    assert '"unknown"' in gateway_pairs


def test_security_quotes_the_websocket_log_line_as_it_is_logged() -> None:
    import logging

    from krakenstream.daemon.gateway.logs import RedactTokens

    # uvicorn's own format for an accepted WebSocket (protocols/websockets/*_impl.py)
    record = logging.LogRecord("uvicorn.error", logging.INFO, __file__, 1,
                               '%s - "WebSocket %s" [accepted]',
                               ("127.0.0.1:5000", "/api/stream/ETH-USD?token=aaa.bbb.ccc"),
                               None)
    RedactTokens().filter(record)
    logged = record.getMessage().split(" - ", 1)[1]
    text = " ".join(page("security.md").split())
    assert f"`{logged}`" in text
    assert "never includes query strings" not in text  # it did, beside this very line


@pytest.mark.slow
def test_the_memory_figures_agree_with_each_other_and_the_code() -> None:
    sys.path.insert(0, str(ROOT / "tests"))
    from test_store_support import T0, synthetic

    text = page("operations.md")
    section = text.split("## Redis memory per pair", 1)[1].split("\n## ", 1)[0]
    stated = re.search(r"BTC/USD snapshots: ([\d,]+) bytes at depth 10", " ".join(
        section.split()))
    assert stated is not None
    for depth in (10, 25, 100):
        snaps = [synthetic(f"BTC/USD-{depth}", T0 + i * 1000, i, depth=depth)
                 for i in range(10_000)]  # as the measuring command does
        average = f"{round(sum(len(s.to_json()) for s in snaps) / len(snaps)):,}"
        row = next(line for line in section.splitlines() if line.startswith(f"| {depth} |"))
        assert row.rstrip(" |").split("|")[-1].strip().startswith(f"{average} B"), row
        if depth == 10:
            assert stated[1] == average  # the text said 902 beside the table's 908


def test_what_operations_says_compose_sets_for_redis() -> None:
    compose = (ROOT / "docker-compose.yml").read_text()
    redis_command = re.search(r'command: \["redis-server"[^\]]*\]', compose)
    assert redis_command is not None
    text = " ".join(page("operations.md").split())
    if "--maxmemory\"" in redis_command[0] or '"--maxmemory",' in redis_command[0]:
        assert "sets only the policy" not in text
    else:
        assert "`docker-compose.yml` sets only the policy (`--maxmemory-policy noeviction`)" \
            in text
        assert "as `docker-compose.yml` does" not in text

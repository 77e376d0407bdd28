"""docker-compose.yml, Dockerfile and .dockerignore, checked without Docker.

Docker cannot run here, so what can be known from the files is checked against the code: the
compose file parses; every ``KMS_*`` variable of every service is a real setting with a value
of the right type (through the very loader the daemon uses, after compose's own ``${...}``
interpolation); topics, ports and limits agree with ``config.example.toml`` and the defaults;
services have health checks and wait for healthy backends; no secret is written down; the
image runs as a non-root user. The health-check commands themselves are run against a real
HTTP server on loopback.
"""

from __future__ import annotations

import http.server
import re
import shlex
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from conftest import free_port
from krakenstream.config import ROLES, Settings, env_name, known_keys, load_settings
from krakenstream.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
EXAMPLE_CONFIG = ROOT / "config.example.toml"

BACKENDS = ("kafka", "redis", "mysql")
KMS_SERVICES = ROLES  # one compose service per role, named after it
#: what each role needs running before it starts (see daemon/services.py: the bus always,
#: the store with analysis or gateway, the user store with the gateway)
NEEDS = {"orderbook": {"kafka"}, "analysis": {"kafka", "redis"},
         "gateway": {"kafka", "redis", "mysql"}}

#: values standing in for the variables compose requires from .env (``${VAR:?message}``)
PLACEHOLDERS = {
    "KMS_AUTH_SECRET": "0123456789abcdef" * 4,
    "MYSQL_PASSWORD": "placeholder-password",
    "MYSQL_ROOT_PASSWORD": "placeholder-root-password",
}

# compose interpolation: $$, $VAR, ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?err}, ${VAR?err}
_INTERPOLATION = re.compile(
    r"\$(?:(?P<escaped>\$)"
    r"|\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}"
    r"|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))"
)


class MissingVariable(Exception):
    """A ``${VAR:?message}`` whose variable is not set: compose refuses to start."""


def interpolate(text: str, env: Mapping[str, str]) -> str:
    """Substitute like ``docker compose`` does (the forms this project's file may use)."""

    def one(m: re.Match[str]) -> str:
        if m["escaped"]:
            return "$"
        name = m["name"] or m["bare"]
        op, arg = m["op"], m["arg"] or ""
        value = env.get(name)
        if op == ":-":
            return value if value else arg
        if op == "-":
            return arg if value is None else value
        if op == ":?" and not value or op == "?" and value is None:
            raise MissingVariable(f"{name}: {arg}")
        return value or ""

    return _INTERPOLATION.sub(one, text)


def variables(text: str) -> dict[str, str | None]:
    """Every variable interpolated in ``text`` with its operator (None for a bare one)."""
    return {m["name"] or m["bare"]: m["op"] for m in _INTERPOLATION.finditer(text)
            if not m["escaped"]}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]  # type: ignore[no-any-return]


def service_env(service: dict[str, Any], env: Mapping[str, str] = PLACEHOLDERS) -> dict[str, str]:
    """A service's environment (mapping or list form), interpolated with ``env``."""
    raw = service.get("environment") or {}
    if isinstance(raw, list):
        raw = dict(item.split("=", 1) for item in raw)
    return {str(k): interpolate("" if v is None else str(v), env) for k, v in raw.items()}


def settings_for(service: dict[str, Any], tmp_path: Path) -> Settings:
    """The settings a kms container would load: its KMS_* variables and the image's KMS_HOME."""
    env = {k: v for k, v in service_env(service).items() if k.startswith("KMS_")}
    return load_settings(env={**env, "KMS_HOME": str(tmp_path)})


def healthcheck_argv(service: dict[str, Any]) -> list[str]:
    test = service["healthcheck"]["test"]
    if isinstance(test, str):
        return ["sh", "-c", test]
    kind, *rest = test
    assert kind in ("CMD", "CMD-SHELL"), test
    return rest if kind == "CMD" else ["sh", "-c", " ".join(rest)]


# -- the file -------------------------------------------------------------------------------


def test_the_file_parses_with_every_service_and_named_volumes(
    compose: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    assert set(BACKENDS) | set(KMS_SERVICES) <= set(services)
    assert set(compose["volumes"]) >= {"kafka-data", "redis-data", "mysql-data"}
    for name, target in (("kafka", "/var/lib/kafka/data"), ("redis", "/data"),
                         ("mysql", "/var/lib/mysql")):
        mounts = [str(v) for v in services[name]["volumes"]]
        source = next(m.split(":")[0] for m in mounts if m.split(":")[1] == target)
        assert source in compose["volumes"], f"{name} keeps its data in a named volume"


def test_kafka_runs_in_kraft_mode_without_zookeeper(services: dict[str, dict[str, Any]]) -> None:
    kafka = services["kafka"]
    assert kafka["image"].startswith("apache/kafka:")
    env = service_env(kafka)
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert "zookeeper" not in COMPOSE_FILE.read_text().lower()
    assert not any("ZOOKEEPER" in k for k in env)
    node_id = env["KAFKA_NODE_ID"]
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == f"{node_id}@kafka:9093"
    assert "CONTROLLER://:9093" in env["KAFKA_LISTENERS"].split(",")
    assert env["KAFKA_CONTROLLER_LISTENER_NAMES"] == "CONTROLLER"
    assert env["KAFKA_LOG_DIRS"] == "/var/lib/kafka/data"
    # a KRaft cluster id is a UUID in URL-safe base64 without padding: 22 characters
    assert re.fullmatch(r"[A-Za-z0-9_-]{21}[AQgw]", env["CLUSTER_ID"])


@pytest.mark.parametrize("name", KMS_SERVICES)
def test_every_kms_variable_is_a_real_setting(
    name: str, services: dict[str, dict[str, Any]]
) -> None:
    by_env = {env_name(key): key for key in known_keys()}
    env = service_env(services[name])
    kms = [k for k in env if k.startswith("KMS_")]
    assert kms, f"{name} is configured by KMS_* variables"
    unknown = [k for k in kms if k not in by_env and k != "KMS_HOME"]
    assert not unknown, f"{name}: not settings: {unknown}"


@pytest.mark.parametrize("name", KMS_SERVICES)
def test_every_kms_value_type_checks_and_the_role_gets_its_backends(
    name: str, services: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    service = services[name]
    s = settings_for(service, tmp_path)  # raises ConfigError naming a bad key or value
    assert service["command"] == ["daemon", "run", "--roles", name]
    assert s.bus.backend == "kafka"
    if name in ("analysis", "gateway"):
        assert s.store.backend == "redis"
        assert urlsplit(s.redis.url).hostname == "redis"
    if name == "gateway":
        assert s.users.backend == "mysql"
        assert s.gateway.host == "0.0.0.0"
        assert s.auth.secret == PLACEHOLDERS["KMS_AUTH_SECRET"]
    host, port = s.kafka.bootstrap.rsplit(":", 1)
    advertised = service_env(services["kafka"])["KAFKA_ADVERTISED_LISTENERS"]
    assert f"PLAINTEXT://{host}:{port}" in advertised.split(",")


def test_the_check_catches_a_misspelt_variable(
    services: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    """The loader really rejects what does not fit, so the two tests above can fail."""
    env = {k: v for k, v in service_env(services["gateway"]).items() if k.startswith("KMS_")}
    with pytest.raises(ConfigError, match="KMS_KAFKA_BOOTSTRAPS"):
        load_settings(env={**env, "KMS_KAFKA_BOOTSTRAPS": "kafka:9092", "KMS_HOME": str(tmp_path)})
    with pytest.raises(ConfigError, match="KMS_GATEWAY_PORT"):
        load_settings(env={**env, "KMS_GATEWAY_PORT": "3000x", "KMS_HOME": str(tmp_path)})


def test_topic_group_ports_and_limits_agree_with_the_example_and_the_defaults(
    services: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    example = load_settings(EXAMPLE_CONFIG, env={"KMS_HOME": str(tmp_path)})
    defaults = Settings()
    gateway = settings_for(services["gateway"], tmp_path)
    for name in KMS_SERVICES:
        s = settings_for(services[name], tmp_path)
        assert s.kafka.topic == example.kafka.topic == defaults.kafka.topic == "kms.book.snapshots"
        assert s.kafka.group == example.kafka.group == defaults.kafka.group
        assert s.kafka.partitions == gateway.kafka.partitions  # one topic, one layout
    assert gateway.gateway.port == example.gateway.port == defaults.gateway.port == 3000
    assert gateway.store.history_limit == example.store.history_limit == 10_000
    analysis = settings_for(services["analysis"], tmp_path)
    orderbook = settings_for(services["orderbook"], tmp_path)
    assert analysis.redis.prefix == gateway.redis.prefix == example.redis.prefix
    assert orderbook.kraken.depth == example.kraken.depth
    assert orderbook.kraken.snapshot_interval == example.kraken.snapshot_interval
    # the broker's default partition count matches the one the bus creates its topic with
    kafka_env = service_env(services["kafka"])
    assert int(kafka_env["KAFKA_NUM_PARTITIONS"]) == gateway.kafka.partitions


def test_the_gateway_port_is_published_on_loopback_only(
    services: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    port = settings_for(services["gateway"], tmp_path).gateway.port
    assert services["gateway"]["ports"] == [f"127.0.0.1:{port}:{port}"]
    published = [name for name, svc in services.items() if svc.get("ports")]
    assert published == ["gateway"], "backends are reached over the compose network only"
    test = " ".join(healthcheck_argv(services["gateway"]))
    assert f"http://127.0.0.1:{port}/health" in test


def test_mysql_url_matches_the_mysql_service(
    services: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    url = urlsplit(settings_for(services["gateway"], tmp_path).mysql.url)
    mysql = service_env(services["mysql"])
    assert (url.hostname, url.port) == ("mysql", 3306)
    assert url.username == mysql["MYSQL_USER"]
    assert url.password == mysql["MYSQL_PASSWORD"] == PLACEHOLDERS["MYSQL_PASSWORD"]
    assert url.path.lstrip("/") == mysql["MYSQL_DATABASE"]


# -- health and order of start ---------------------------------------------------------------


def test_every_service_has_a_healthcheck(services: dict[str, dict[str, Any]]) -> None:
    for name, svc in services.items():
        assert healthcheck_argv(svc), f"{name} has no health check"
    assert "kafka-broker-api-versions.sh" in " ".join(healthcheck_argv(services["kafka"]))
    assert healthcheck_argv(services["redis"]) == ["redis-cli", "ping"]
    assert healthcheck_argv(services["mysql"])[:2] == ["mysqladmin", "ping"]
    assert healthcheck_argv(services["gateway"])[:2] == ["python", "-c"]
    for name in ("orderbook", "analysis"):
        assert healthcheck_argv(services[name])[:2] == ["python", "-c"]
        env = service_env(services[name])
        assert (env["KMS_DAEMON_HEALTH_HOST"], env["KMS_DAEMON_HEALTH_PORT"]) == ("0.0.0.0",
                                                                                  "9100")
        assert "ports" not in services[name]  # the health listener stays in the network


def test_kms_services_wait_for_healthy_backends(services: dict[str, dict[str, Any]]) -> None:
    for name in KMS_SERVICES:
        depends = services[name]["depends_on"]
        assert set(depends) == NEEDS[name], name
        assert all(d["condition"] == "service_healthy" for d in depends.values()), name


def test_kms_services_drain_on_sigterm(services: dict[str, dict[str, Any]]) -> None:
    for name in KMS_SERVICES:
        svc = services[name]
        assert svc["init"] is True  # a real PID 1 forwards SIGTERM and reaps
        assert svc.get("stop_signal", "SIGTERM") == "SIGTERM"
        grace = re.fullmatch(r"(\d+)s", svc["stop_grace_period"])
        assert grace and int(grace[1]) >= 10, "time to flush the bus and store what it holds"


def _serve_health(status: int) -> tuple[http.server.HTTPServer, int]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the http.server API
            code = status if self.path == "/health" else 404
            self.send_response(code)
            self.end_headers()
            self.wfile.write(b'{"status": "ok"}')

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, int(server.server_address[1])


@pytest.fixture
def health_server() -> Iterator[int]:
    server, port = _serve_health(200)
    yield port
    server.shutdown()
    server.server_close()


def _run_check(argv: list[str], env: Mapping[str, str]) -> int:
    assert argv[:2] == ["python", "-c"]
    done = subprocess.run([sys.executable, "-c", argv[2]], env=dict(env), timeout=30,
                          capture_output=True)
    return done.returncode


@pytest.mark.slow
def test_the_gateway_healthcheck_passes_on_200_and_fails_otherwise(
    services: dict[str, dict[str, Any]], health_server: int
) -> None:
    argv = healthcheck_argv(services["gateway"])
    # the same command, aimed at a server on a free port instead of the container's 3000
    aimed = [arg.replace(":3000/", f":{health_server}/") for arg in argv]
    assert _run_check(aimed, {}) == 0
    nobody = [arg.replace(":3000/", f":{free_port()}/") for arg in argv]
    assert _run_check(nobody, {}) != 0
    server, port = _serve_health(503)
    try:
        assert _run_check([arg.replace(":3000/", f":{port}/") for arg in argv], {}) != 0
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.slow
def test_the_role_healthcheck_asks_its_own_health_listener(
    services: dict[str, dict[str, Any]], health_server: int
) -> None:
    """orderbook and analysis serve no gateway: their check asks their own /health on
    daemon.health_port (9100), passing on 200 and failing otherwise (issue 14 item 10)."""
    for name in ("orderbook", "analysis"):
        argv = healthcheck_argv(services[name])
        assert ":9100/health" in argv[2]
        aimed = [arg.replace(":9100/", f":{health_server}/") for arg in argv]
        assert _run_check(aimed, {}) == 0
        nobody = [arg.replace(":9100/", f":{free_port()}/") for arg in argv]
        assert _run_check(nobody, {}) != 0
    server, port = _serve_health(503)
    try:
        argv = healthcheck_argv(services["analysis"])
        assert _run_check([arg.replace(":9100/", f":{port}/") for arg in argv], {}) != 0
    finally:
        server.shutdown()
        server.server_close()


# -- secrets ---------------------------------------------------------------------------------

_SECRET_NAME = re.compile(r"SECRET|PASSWORD|PASSWD|TOKEN|_KEY\b", re.I)


def test_no_secret_is_written_in_the_file(services: dict[str, dict[str, Any]]) -> None:
    for name, svc in services.items():
        raw = svc.get("environment") or {}
        for key, value in raw.items():
            text = str(value)
            if _SECRET_NAME.search(key):
                assert re.fullmatch(r"\$\{[A-Z0-9_]+:\?[^}]+\}", text), (
                    f"{name}: {key} must come from .env as a required ${{VAR:?...}}")
            if key == "KMS_MYSQL_URL":
                # not urlsplit: the "?" of the interpolation would end the netloc
                assert re.fullmatch(r"mysql://\w+:\$\{[A-Z0-9_]+:\?[^}]+\}@[^@]+", text), (
                    f"{name}: the MySQL password must come from .env")
    text = COMPOSE_FILE.read_text()
    assert not re.search(r"\b[0-9a-f]{32,}\b", text), "no hex secret in the file"


def test_the_secrets_are_required_not_defaulted(compose: dict[str, Any]) -> None:
    """Without a .env, compose refuses to start instead of running with a known secret."""
    text = COMPOSE_FILE.read_text()
    required = {name for name, op in variables(text).items() if op in (":?", "?")}
    assert required == set(PLACEHOLDERS)
    for name in required:
        env = {k: v for k, v in PLACEHOLDERS.items() if k != name}
        with pytest.raises(MissingVariable, match=name):
            for svc in compose["services"].values():
                service_env(svc, env)


def test_compose_variables_named_kms_are_settings() -> None:
    """A ``${KMS_...}`` read by compose from the shell or .env is also read by every ``kms``
    run in that shell, where a KMS_ name that is not a setting is an error: so none is."""
    envs = {env_name(key) for key in known_keys()}
    named = {name for name in variables(COMPOSE_FILE.read_text()) if name.startswith("KMS_")}
    assert named, "the pairs, URL, log level and secret can be set from outside"
    assert named <= envs, f"not settings: {sorted(named - envs)}"


def test_the_secrets_reach_only_the_gateway(services: dict[str, dict[str, Any]]) -> None:
    for name, svc in services.items():
        env = service_env(svc)
        holds = {k for k in ("KMS_AUTH_SECRET", "KMS_MYSQL_URL") if k in env}
        if name == "gateway":
            assert holds == {"KMS_AUTH_SECRET", "KMS_MYSQL_URL"}
        elif name != "mysql":
            assert not holds, f"{name} does not need {holds}"


# -- Dockerfile ------------------------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for line in DOCKERFILE.read_text().splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        full = (pending + stripped).strip()
        pending = ""
        word, _, rest = full.partition(" ")
        out.append((word.upper(), rest.strip()))
    return out


def test_the_image_is_python_311_slim_and_installs_the_package() -> None:
    steps = dockerfile_instructions()
    assert steps[0] == ("FROM", "python:3.11-slim")
    runs = " ".join(args for word, args in steps if word == "RUN")
    assert re.search(r"pip install (/tmp/krakenstream|\.)(\s|$)", runs)
    assert ("ENTRYPOINT", '["kms"]') in steps
    envs = " ".join(args for word, args in steps if word == "ENV")
    assert "KMS_HOME=/data" in envs


def test_the_image_runs_as_a_non_root_user() -> None:
    steps = dockerfile_instructions()
    users = [args for word, args in steps if word == "USER"]
    assert users, "no USER: the container would run as root"
    last = users[-1].split(":")[0]
    assert last not in ("root", "0")
    # set before the entrypoint, and that user owns /data, where the daemon writes
    index = {word: i for i, (word, _) in enumerate(steps)}
    assert max(i for i, (w, _) in enumerate(steps) if w == "USER") < index["ENTRYPOINT"]
    runs = " ".join(args for word, args in steps if word == "RUN")
    assert re.search(rf"useradd .*\b{last}\b", runs)
    assert re.search(rf"install -d -o {last} -g \S+ -m 0700 /data", runs)


@pytest.mark.slow
def test_the_image_healthcheck_asks_the_configured_gateway(
    health_server: int, tmp_path: Path
) -> None:
    steps = dockerfile_instructions()
    (check,) = [args for word, args in steps if word == "HEALTHCHECK"]
    exec_form = check[check.index("CMD") + 3:].strip()
    argv = yaml.safe_load(exec_form)  # a JSON array is YAML
    assert argv[:2] == ["python", "-c"]
    # the port comes from the settings, so KMS_GATEWAY_PORT moves the check along
    env = {"KMS_GATEWAY_HOST": "0.0.0.0", "KMS_GATEWAY_PORT": str(health_server),
           "KMS_HOME": str(tmp_path)}
    assert _run_check(argv, env) == 0
    assert _run_check(argv, {**env, "KMS_GATEWAY_PORT": str(free_port())}) != 0


def test_dockerignore_keeps_secrets_and_local_state_out_of_the_image() -> None:
    rules = [ln.strip() for ln in DOCKERIGNORE.read_text().splitlines()
             if ln.strip() and not ln.startswith("#")]
    assert rules[0] == "*", "everything is excluded unless named"
    included = {r[1:].rstrip("/") for r in rules if r.startswith("!")}
    assert included == {"pyproject.toml", "README.md", "src"}
    copied = [shlex.split(args)[:-1] for word, args in dockerfile_instructions()
              if word == "COPY"]
    assert {src for srcs in copied for src in srcs} <= included

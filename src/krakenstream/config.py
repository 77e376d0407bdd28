"""Settings: defaults < TOML file < ``KMS_*`` environment < CLI flags.
(Long on purpose: every section's settings in one schema, in the one module that reads the
environment; ``tests/test_layers.py`` holds it to that.)

This is the only module that reads the environment. Every key is ``section.key``; the
environment spells it ``KMS_<SECTION>_<KEY>`` (lists comma-separated). A key that is not known,
in the file or in the environment, is an error that names it: a typo never turns into a silent
default. Values are checked against the field's type (and, for some, a set of choices).

``KMS_HOME`` moves every file the tool writes (databases, secret, pid and log files,
credentials) into one folder so several instances and test runs never collide.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, get_type_hints

from .core.pairs import VALID_DEPTHS
from .errors import ConfigError

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

    Options = TypeVar("Options", bound=DataclassInstance)

ROLES = ("orderbook", "analysis", "gateway")

#: environment variables that are not ``section.key`` settings but are still ours
_TOP_LEVEL_ENV = {"KMS_HOME", "KMS_CONFIG", "KMS_SERVER", "KMS_VERBOSE"}


@dataclass(frozen=True, slots=True)
class KrakenSettings:
    url: str = "wss://ws.kraken.com/v2"
    pairs: list[str] = field(default_factory=lambda: ["BTC/USD", "ETH/USD"])
    depth: int = 10
    snapshot_interval: float = 1.0
    #: no frame at all (heartbeats included) for this long marks the feed stale
    heartbeat_timeout: float = 5.0
    #: symbols per subscribe request, and the pause between requests
    subscribe_batch: int = 20
    subscribe_pacing: float = 0.05
    #: frames buffered between the socket reader and the book processing
    queue_size: int = 10_000
    backoff_initial: float = 0.5
    backoff_max: float = 60.0
    #: a subscribe/unsubscribe unanswered for this long ends the connection
    ack_timeout: float = 10.0
    #: seconds the opening handshake may take
    open_timeout: float = 10.0
    #: the most pairs one WebSocket connection carries; more pairs open more connections
    pairs_per_connection: int = 200
    #: connection attempts of all the feed's connections together in any 10 minutes
    connect_limit: int = 60
    #: least seconds between two connection attempts of the feed
    connect_spacing: float = 0.5
    #: the most pairs this orderbook process tracks (named and brought by patterns)
    max_pairs: int = 2_000
    #: seconds a pair Kraken refused stays listed (in error, with Kraken's words) after it
    #: was dropped
    refused_keep: float = 3_600.0
    #: pairs this orderbook process owns when pairs are sharded: "INDEX/COUNT", empty = all
    shard: str = ""


@dataclass(frozen=True, slots=True)
class GatewaySettings:
    host: str = "127.0.0.1"
    port: int = 3000
    max_body_bytes: int = 65_536
    #: snapshots queued for one WebSocket client before it is cut off
    ws_backlog: int = 64
    #: proxies (IP addresses or CIDR networks) whose X-Forwarded-For is believed; none by default
    trusted_proxies: list[str] = field(default_factory=list)

    #: seconds a connection may take to send a request's headers (then 408 and closed)
    header_timeout: float = 10.0
    #: WebSocket streams open at once, in all and per account (past either: close 4429)
    max_ws_clients: int = 1_000
    max_ws_per_user: int = 50
    #: heavy reads running at once: summaries, and history answers (past it: 503 Retry-After)
    max_summaries: int = 4
    max_exports: int = 8


@dataclass(frozen=True, slots=True)
class BusSettings:
    backend: str = "memory"
    #: the least a queue of the in-process bus holds (a live tap drops its oldest beyond
    #: two ticks of every pair, or this)
    queue_size: int = 1_000
    #: whole publish ticks of every tracked pair the path to history holds (the in-process
    #: analysis group's queue, the Kafka producer's buffer) before it drops the oldest
    buffer_ticks: int = 10


@dataclass(frozen=True, slots=True)
class StoreSettings:
    backend: str = "sqlite"
    history_limit: int = 10_000
    #: SQLite file; empty means ``<data dir>/history.sqlite3``
    path: str = ""


@dataclass(frozen=True, slots=True)
class ArchiveSettings:
    enabled: bool = True
    #: the Parquet archive's folder; empty means ``<data dir>/archive``
    path: str = ""
    #: whole UTC days kept after the day ends; 0 keeps everything
    keep_days: int = 0
    #: a file is closed at each UTC hour or after this many snapshots of one pair
    roll_rows: int = 3_600


@dataclass(frozen=True, slots=True)
class UsersSettings:
    backend: str = "sqlite"
    #: SQLite file; empty means ``<data dir>/users.sqlite3``
    path: str = ""


@dataclass(frozen=True, slots=True)
class AuthSettings:
    #: HS256 signing secret; empty means generated once and kept in ``<data dir>/secret`` (0600)
    secret: str = ""
    token_ttl: int = 86_400
    issuer: str = "krakenstream"
    audience: str = "krakenstream"
    bcrypt_cost: int = 12
    min_password_length: int = 8
    #: failed logins allowed per email / per client address within ``login_window`` seconds
    login_max_failures: int = 5
    login_window: int = 300
    #: "open": anyone may register; "closed": only the first account, then admins add accounts
    registration: str = "open"
    #: registrations allowed per client address within ``registration_window`` seconds
    registration_max: int = 10
    registration_window: int = 3600
    #: password hashes waiting for a worker, per lane (logins / registrations); then 503
    hash_queue: int = 16
    #: seconds an account's state (role, disabled, revoked tokens) is reused before asking again
    access_ttl: float = 2.0


@dataclass(frozen=True, slots=True)
class KafkaSettings:
    bootstrap: str = "127.0.0.1:9092"
    topic: str = "kms.book.snapshots"
    group: str = "kms-analysis"
    session_timeout_ms: int = 10_000
    #: snapshots held while the broker is unreachable (then dropped and counted)
    buffer_size: int = 10_000
    client_id: str = "krakenstream"
    #: partitions of the topic when the bus creates it (an existing topic is left as it is)
    partitions: int = 4
    #: replication factor of the topic when the bus creates it (3 on a production cluster)
    replication_factor: int = 1


@dataclass(frozen=True, slots=True)
class RedisSettings:
    url: str = "redis://127.0.0.1:6379/0"
    prefix: str = "kms:"


@dataclass(frozen=True, slots=True)
class MysqlSettings:
    url: str = "mysql://root@127.0.0.1:3306/krakenstream"


@dataclass(frozen=True, slots=True)
class DaemonSettings:
    roles: list[str] = field(default_factory=lambda: list(ROLES))
    log_level: str = "info"
    #: a process without the gateway role serves /health and /metrics here (0: it does not)
    health_host: str = "127.0.0.1"
    health_port: int = 0


@dataclass(frozen=True, slots=True)
class Settings:
    kraken: KrakenSettings = field(default_factory=KrakenSettings)
    gateway: GatewaySettings = field(default_factory=GatewaySettings)
    bus: BusSettings = field(default_factory=BusSettings)
    store: StoreSettings = field(default_factory=StoreSettings)
    archive: ArchiveSettings = field(default_factory=ArchiveSettings)
    users: UsersSettings = field(default_factory=UsersSettings)
    auth: AuthSettings = field(default_factory=AuthSettings)
    kafka: KafkaSettings = field(default_factory=KafkaSettings)
    redis: RedisSettings = field(default_factory=RedisSettings)
    mysql: MysqlSettings = field(default_factory=MysqlSettings)
    daemon: DaemonSettings = field(default_factory=DaemonSettings)
    paths: Paths = field(default_factory=lambda: Paths.from_env({}))

    def replace(self, **sections: Any) -> Settings:
        return dataclasses.replace(self, **sections)


#: allowed values for keys that take one of a few words
CHOICES: dict[str, tuple[Any, ...]] = {
    "kraken.depth": VALID_DEPTHS,
    "bus.backend": ("memory", "kafka"),
    "store.backend": ("sqlite", "redis"),
    "users.backend": ("sqlite", "mysql"),
    "auth.registration": ("open", "closed"),
    "daemon.log_level": ("debug", "info", "warning", "error"),
}

#: lower bounds for numeric keys (inclusive)
MINIMUM: dict[str, float] = {
    "kraken.snapshot_interval": 0.05,
    "kraken.heartbeat_timeout": 0.1,
    "kraken.subscribe_batch": 1,
    "kraken.subscribe_pacing": 0.0,
    "kraken.queue_size": 10,
    "kraken.backoff_initial": 0.0,
    "kraken.backoff_max": 0.0,
    "kraken.ack_timeout": 0.1,
    "kraken.open_timeout": 0.1,
    "kraken.pairs_per_connection": 1,
    "kraken.connect_limit": 1,
    "kraken.connect_spacing": 0.0,
    "kraken.max_pairs": 1,
    "kraken.refused_keep": 0.0,
    "gateway.port": 0,
    "daemon.health_port": 0,
    "gateway.max_body_bytes": 1024,
    "gateway.ws_backlog": 1,
    "gateway.header_timeout": 0.1,
    "gateway.max_ws_clients": 1,
    "gateway.max_ws_per_user": 1,
    "gateway.max_summaries": 1,
    "gateway.max_exports": 1,
    "bus.queue_size": 1,
    "bus.buffer_ticks": 1,
    "store.history_limit": 1,
    "archive.keep_days": 0,
    "archive.roll_rows": 1,
    "auth.token_ttl": 1,
    "auth.bcrypt_cost": 4,
    "auth.min_password_length": 1,
    "auth.login_max_failures": 1,
    "auth.login_window": 1,
    "auth.registration_max": 1,
    "auth.registration_window": 1,
    "auth.hash_queue": 0,
    "auth.access_ttl": 0.0,
    "kafka.session_timeout_ms": 1000,
    "kafka.buffer_size": 1,
    "kafka.partitions": 1,
    "kafka.replication_factor": 1,
}
MAXIMUM: dict[str, float] = {"gateway.port": 65535, "daemon.health_port": 65535,
                              "auth.bcrypt_cost": 31, "auth.access_ttl": 60.0}


@dataclass(frozen=True, slots=True)
class Paths:
    """Where files go. With ``KMS_HOME`` everything lives in that one folder."""

    config_dir: Path
    data_dir: Path
    state_dir: Path

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Paths:
        home = env.get("KMS_HOME")
        if home:
            root = Path(home).expanduser()
            return cls(config_dir=root, data_dir=root, state_dir=root)
        user_home = Path(env.get("HOME") or Path.home())
        xdg_config = Path(env.get("XDG_CONFIG_HOME") or user_home / ".config")
        xdg_data = Path(env.get("XDG_DATA_HOME") or user_home / ".local" / "share")
        xdg_state = Path(env.get("XDG_STATE_HOME") or user_home / ".local" / "state")
        return cls(
            config_dir=xdg_config / "krakenstream",
            data_dir=xdg_data / "krakenstream",
            state_dir=xdg_state / "krakenstream",
        )

    @property
    def config_file(self) -> Path:
        return self.config_dir / "config.toml"

    @property
    def credentials_file(self) -> Path:
        return self.config_dir / "credentials.json"

    @property
    def secret_file(self) -> Path:
        return self.data_dir / "secret"

    @property
    def pid_file(self) -> Path:
        return self.state_dir / "daemon.pid"

    @property
    def log_file(self) -> Path:
        return self.state_dir / "daemon.log"

    def ensure(self) -> None:
        for d in (self.config_dir, self.data_dir, self.state_dir):
            d.mkdir(parents=True, exist_ok=True, mode=0o700)


_SECTIONS: dict[str, type[Any]] = {
    f.name: f.default_factory  # type: ignore[misc]
    for f in fields(Settings)
    if f.name != "paths"
}


def _section_types(section: str) -> dict[str, Any]:
    cls = _SECTIONS[section]
    hints = get_type_hints(cls)
    return {f.name: hints[f.name] for f in fields(cls)}


def known_keys() -> dict[str, Any]:
    """Every ``section.key`` with its type: the configuration reference is built from this."""
    out: dict[str, Any] = {}
    for section in _SECTIONS:
        for key, typ in _section_types(section).items():
            out[f"{section}.{key}"] = typ
    return out


def env_name(dotted: str) -> str:
    section, key = dotted.split(".", 1)
    return f"KMS_{section.upper()}_{key.upper()}"


def _coerce(dotted: str, typ: Any, value: Any, *, from_text: bool) -> Any:
    """Turn ``value`` into ``typ`` or raise a ConfigError naming ``dotted``."""
    where = env_name(dotted) if from_text else dotted

    def bad(expected: str) -> ConfigError:
        return ConfigError(f"{where}: expected {expected}, got {value!r}")

    if typ is bool:
        if isinstance(value, bool):
            out: Any = value
        elif from_text and isinstance(value, str) and value.lower() in (
            "1", "true", "yes", "on", "0", "false", "no", "off",
        ):
            out = value.lower() in ("1", "true", "yes", "on")
        else:
            raise bad("true or false")
    elif typ is int:
        if isinstance(value, bool):
            raise bad("an integer")
        if isinstance(value, int):
            out = value
        elif from_text and isinstance(value, str):
            try:
                out = int(value.strip())
            except ValueError:
                raise bad("an integer") from None
        else:
            raise bad("an integer")
    elif typ is float:
        if isinstance(value, bool):
            raise bad("a number")
        if isinstance(value, (int, float)):
            out = float(value)
        elif from_text and isinstance(value, str):
            try:
                out = float(value.strip())
            except ValueError:
                raise bad("a number") from None
        else:
            raise bad("a number")
    elif typ is str:
        if not isinstance(value, str):
            raise bad("a string")
        out = value
    elif typ == list[str]:
        if from_text and isinstance(value, str):
            out = [v.strip() for v in value.split(",") if v.strip()]
        elif isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
            out = list(value)
        else:
            raise bad("a list of strings")
    else:  # pragma: no cover - a field type this loader does not know is a bug here
        raise TypeError(f"unsupported setting type {typ!r} for {dotted}")

    choices = CHOICES.get(dotted)
    if choices is not None:
        items = out if isinstance(out, list) else [out]
        for item in items:
            if item not in choices:
                shown = ", ".join(str(c) for c in choices)
                raise ConfigError(f"{where}: {item!r} is not one of {shown}")
    lo, hi = MINIMUM.get(dotted), MAXIMUM.get(dotted)
    if lo is not None and out < lo:
        raise ConfigError(f"{where}: {out!r} is below the minimum {lo:g}")
    if hi is not None and out > hi:
        raise ConfigError(f"{where}: {out!r} is above the maximum {hi:g}")
    if dotted == "daemon.roles":
        for role in out:
            if role not in ROLES:
                raise ConfigError(f"{where}: unknown role {role!r} (roles: {', '.join(ROLES)})")
    if dotted == "kraken.shard" and out:
        parse_shard(out, where=where)
    if dotted == "gateway.trusted_proxies":
        out = [_network(item, where) for item in out]
    return out


def _network(text: str, where: str) -> str:
    """An IP address or CIDR network, as written canonically (``10.0.0.0/8``)."""
    import ipaddress

    try:
        return str(ipaddress.ip_network(text.strip(), strict=False))
    except ValueError:
        raise ConfigError(
            f"{where}: {text!r} is not an IP address or a CIDR network such as 10.0.0.0/8"
        ) from None


def parse_shard(text: str, *, where: str = "kraken.shard") -> tuple[int, int]:
    """``"1/3"`` → ``(1, 3)``: this process owns pairs whose stable hash % 3 == 1."""
    try:
        index_s, count_s = text.split("/")
        index, count = int(index_s), int(count_s)
    except ValueError:
        raise ConfigError(f"{where}: expected INDEX/COUNT such as 0/2, got {text!r}") from None
    if count < 1 or not 0 <= index < count:
        raise ConfigError(f"{where}: expected 0 <= INDEX < COUNT, got {text!r}")
    return index, count


def _merge(
    values: dict[str, dict[str, Any]], section: str, key: str, raw: Any, *, from_text: bool
) -> None:
    dotted = f"{section}.{key}"
    types = _section_types(section)
    if key not in types:
        where = env_name(dotted) if from_text else dotted
        raise ConfigError(f"unknown setting {where}", hint=_suggest(section, key))
    values.setdefault(section, {})[key] = _coerce(dotted, types[key], raw, from_text=from_text)


def _suggest_section(section: str) -> str:
    """``[gatway]`` → ``did you mean [gateway]?``, else the sections there are."""
    import difflib

    close = difflib.get_close_matches(section, list(_SECTIONS), n=1)
    if close:
        return f"did you mean [{close[0]}]?"
    return f"the sections are {', '.join(f'[{s}]' for s in _SECTIONS)}"


def _suggest_env(name: str) -> str:
    """``KMS_GATWAY_PORT`` → ``did you mean KMS_GATEWAY_PORT?``, else how to find a stray one."""
    import difflib

    known = [env_name(key) for key in known_keys()] + sorted(_TOP_LEVEL_ENV)
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.8)
    if close:
        return f"did you mean {close[0]}?"
    return (f"every KMS_ variable is a setting but {', '.join(sorted(_TOP_LEVEL_ENV))}: "
            "env | grep ^KMS_ finds the stray one")


def _suggest(section: str, key: str) -> str:
    import difflib

    names = list(_section_types(section)) if section in _SECTIONS else []
    close = difflib.get_close_matches(key, names, n=1)
    if close:
        return f"did you mean {section}.{close[0]}?"
    return "see config.example.toml for every key"


def load_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}",
                          hint="check the path given to --config or KMS_CONFIG") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}",
                          hint="fix the line named; config.example.toml shows every key "
                          "written right") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}",
                          hint="check the path given to --config or KMS_CONFIG, and that "
                          "this user may read it") from None


def load_settings(
    config_file: str | Path | None = None,
    *,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Build the settings from defaults, a TOML file, the environment and CLI overrides.

    ``config_file`` defaults to ``KMS_CONFIG`` or ``<config dir>/config.toml`` if present.
    ``overrides`` are ``{"section.key": value}`` from CLI flags (already typed).
    """
    environ: Mapping[str, str] = os.environ if env is None else env
    paths = Paths.from_env(environ)
    values: dict[str, dict[str, Any]] = {}

    path: Path | None
    if config_file is not None:
        path = Path(config_file)
    elif environ.get("KMS_CONFIG"):
        path = Path(environ["KMS_CONFIG"])
    elif paths.config_file.is_file():
        path = paths.config_file
    else:
        path = None
    if path is not None:
        data = load_toml(path)
        for section, table in data.items():
            if section not in _SECTIONS:
                raise ConfigError(f"unknown section [{section}] in {path}",
                                  hint=_suggest_section(section))
            if not isinstance(table, dict):
                raise ConfigError(f"[{section}] in {path} must be a table")
            for key, raw in table.items():
                _merge(values, section, key, raw, from_text=False)

    for name, raw in environ.items():
        if not name.startswith("KMS_") or name in _TOP_LEVEL_ENV:
            continue
        rest = name[4:].lower()
        env_section = next((s for s in _SECTIONS if rest.startswith(s + "_")), None)
        if env_section is None:
            raise ConfigError(f"unknown setting {name} in the environment",
                              hint=_suggest_env(name))
        _merge(values, env_section, rest[len(env_section) + 1 :], raw, from_text=True)

    for dotted, raw in (overrides or {}).items():
        if raw is None:
            continue
        section, _, key = dotted.partition(".")
        if section not in _SECTIONS:
            raise ConfigError(f"unknown setting {dotted}")
        _merge(values, section, key, raw, from_text=isinstance(raw, str))

    sections = {name: _SECTIONS[name](**values.get(name, {})) for name in _SECTIONS}
    return Settings(**sections, paths=paths)


def as_options(section: object, cls: type[Options]) -> Options:
    """A backend's options (a small frozen dataclass of plain values) from a settings section:
    each of its fields takes the section's setting of the same name.

    Backends, the feed and the bus never see :class:`Settings`: the daemon's wiring and the
    CLI hand them values built here, so only those two edges read the configuration.
    """
    return cls(**{f.name: getattr(section, f.name) for f in fields(cls)})


def server_url(settings: Settings, env: Mapping[str, str] | None = None) -> str:
    """The gateway the CLI talks to: ``KMS_SERVER`` or the local daemon's address."""
    environ: Mapping[str, str] = os.environ if env is None else env
    if environ.get("KMS_SERVER"):
        return environ["KMS_SERVER"].rstrip("/")
    return local_url(settings.gateway.host, settings.gateway.port)


def local_url(host: str, port: int) -> str:
    """``http://host:port`` for a listener on this machine: one bound to every interface is
    asked on 127.0.0.1, an IPv6 address is bracketed."""
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{port}"


def terminal_columns(env: Mapping[str, str] | None = None) -> int | None:
    """``COLUMNS`` when it is set to a width, else None (the terminal's own convention, read
    here with the rest of the environment)."""
    environ: Mapping[str, str] = os.environ if env is None else env
    text = environ.get("COLUMNS", "").strip()
    return int(text) if text.isdigit() and int(text) > 0 else None


def env_flag(name: str, env: Mapping[str, str] | None = None) -> bool:
    environ: Mapping[str, str] = os.environ if env is None else env
    return environ.get(name, "").lower() in ("1", "true", "yes", "on")


def child_environment(
    settings: Mapping[str, str] | None = None,
    *,
    keep_kms: bool = True,
    config_file: Path | None = None,
) -> dict[str, str]:
    """The environment for a kms child process (a background daemon, the demo's processes).

    This process's environment, without the user's ``KMS_*`` variables unless ``keep_kms``,
    with ``config_file`` passed on as ``KMS_CONFIG`` and ``settings`` (``KMS_*`` names) on
    top. Lives here because this is the one module that reads the environment.
    """
    env = {k: v for k, v in os.environ.items() if keep_kms or not k.startswith("KMS_")}
    if config_file is not None:
        env["KMS_CONFIG"] = str(config_file.expanduser().resolve())
    env.update(settings or {})
    return env


def set_home(path: Path) -> Path:
    """Make ``path`` this process's ``KMS_HOME`` (``--home``); children inherit it."""
    home = path.expanduser().resolve()
    os.environ["KMS_HOME"] = str(home)
    return home

"""Settings: defaults < TOML file < KMS_* environment < CLI overrides; typos are errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from krakenstream.config import Paths, env_name, known_keys, load_settings, parse_shard
from krakenstream.errors import ConfigError


def test_defaults() -> None:
    s = load_settings(env={})
    assert s.kraken.url == "wss://ws.kraken.com/v2"
    assert s.kraken.depth == 10 and s.kraken.snapshot_interval == 1.0
    assert (s.gateway.host, s.gateway.port) == ("127.0.0.1", 3000)
    assert s.store.history_limit == 10_000 and s.bus.backend == "memory"
    assert s.auth.secret == ""  # never a default secret


def test_precedence(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('[kraken]\npairs = ["SOL/USD"]\ndepth = 25\n[gateway]\nport = 4000\n')
    s = load_settings(cfg, env={"KMS_GATEWAY_PORT": "5000"})
    assert s.kraken.pairs == ["SOL/USD"] and s.kraken.depth == 25
    assert s.gateway.port == 5000  # env beats file
    s = load_settings(cfg, env={"KMS_GATEWAY_PORT": "5000"}, overrides={"gateway.port": 6000})
    assert s.gateway.port == 6000  # flags beat env
    s = load_settings(cfg, env={}, overrides={"gateway.port": None})
    assert s.gateway.port == 4000  # an unset flag changes nothing


def test_env_lists_and_types() -> None:
    s = load_settings(env={"KMS_KRAKEN_PAIRS": "ETH/USD, BTC/USD", "KMS_KRAKEN_DEPTH": "100",
                           "KMS_KRAKEN_SNAPSHOT_INTERVAL": "0.5"})
    assert s.kraken.pairs == ["ETH/USD", "BTC/USD"]
    assert s.kraken.depth == 100 and s.kraken.snapshot_interval == 0.5


@pytest.mark.parametrize(("env", "needle"), [
    ({"KMS_KRAKEN_DEPHT": "10"}, "KMS_KRAKEN_DEPHT"),
    ({"KMS_NOPE_X": "1"}, "KMS_NOPE_X"),
    ({"KMS_KRAKEN_DEPTH": "11"}, "KMS_KRAKEN_DEPTH"),
    ({"KMS_KRAKEN_DEPTH": "ten"}, "KMS_KRAKEN_DEPTH"),
    ({"KMS_GATEWAY_PORT": "70000"}, "KMS_GATEWAY_PORT"),
    ({"KMS_BUS_BACKEND": "rabbit"}, "KMS_BUS_BACKEND"),
    ({"KMS_DAEMON_ROLES": "orderbook,cook"}, "cook"),
    ({"KMS_KRAKEN_SHARD": "3/2"}, "KMS_KRAKEN_SHARD"),
])
def test_bad_env_names_the_key(env: dict[str, str], needle: str) -> None:
    with pytest.raises(ConfigError) as exc:
        load_settings(env=env)
    assert needle in str(exc.value)


@pytest.mark.parametrize(("toml", "needle"), [
    ("[kraken]\ndpeth = 10\n", "kraken.dpeth"),
    ("[krakn]\ndepth = 10\n", "[krakn]"),
    ('[kraken]\ndepth = "10"\n', "kraken.depth"),
    ("[kraken]\npairs = 3\n", "kraken.pairs"),
    ("[auth]\nbcrypt_cost = 2\n", "auth.bcrypt_cost"),
    ("kraken = 1\n", "[kraken]"),
    ("[kraken\n", "not valid TOML"),
])
def test_bad_file_names_the_key(tmp_path: Path, toml: str, needle: str) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(toml)
    with pytest.raises(ConfigError) as exc:
        load_settings(cfg, env={})
    assert needle in str(exc.value)


def test_typo_gets_a_suggestion(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text("[kraken]\ndpeth = 10\n")
    with pytest.raises(ConfigError) as exc:
        load_settings(cfg, env={})
    assert exc.value.hint == "did you mean kraken.depth?"


def test_missing_file() -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_settings("/nonexistent/kms.toml", env={})


def test_kms_home_moves_every_file(tmp_path: Path) -> None:
    p = Paths.from_env({"KMS_HOME": str(tmp_path)})
    for f in (p.config_file, p.credentials_file, p.secret_file, p.pid_file, p.log_file):
        assert f.parent == tmp_path
    s = load_settings(env={"KMS_HOME": str(tmp_path)})
    assert s.paths.data_dir == tmp_path


def test_config_file_found_in_kms_home(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text("[gateway]\nport = 4321\n")
    assert load_settings(env={"KMS_HOME": str(tmp_path)}).gateway.port == 4321


def test_example_config_lists_every_key() -> None:
    example = Path(__file__).resolve().parent.parent / "config.example.toml"
    import tomllib

    data = tomllib.loads(example.read_text())
    listed = {f"{section}.{key}" for section, table in data.items() for key in table}
    assert listed == set(known_keys())
    load_settings(example, env={})  # and it loads


def test_env_name_and_shard() -> None:
    assert env_name("kraken.url") == "KMS_KRAKEN_URL"
    assert parse_shard("1/3") == (1, 3)


@pytest.mark.parametrize(("section", "options"), [
    ("kraken", "krakenstream.feed.options:FeedOptions"),
    ("kafka", "krakenstream.bus.kafka:KafkaOptions"),
])
def test_backend_options_are_settings_with_the_same_defaults(section: str, options: str) -> None:
    """Backends take option values, not Settings; as_options fills one from a section, so
    each field must be a setting of that section, of the same type and default."""
    import dataclasses
    import importlib
    from typing import get_type_hints

    from krakenstream.config import Settings, as_options

    module, _, name = options.partition(":")
    cls = getattr(importlib.import_module(module), name)
    defaults = getattr(Settings(), section)
    hints, setting_hints = get_type_hints(cls), get_type_hints(type(defaults))
    for f in dataclasses.fields(cls):
        assert f.name in setting_hints, f"{name}.{f.name} is not a setting of [{section}]"
        assert hints[f.name] == setting_hints[f.name], f.name
        assert f.default == getattr(defaults, f.name), f"{name}.{f.name}: default differs"
    assert as_options(defaults, cls) == cls()


def test_the_in_process_bus_and_the_stores_default_to_the_settings() -> None:
    """Plain constructor arguments, with the settings' defaults where they have one."""
    import inspect

    from krakenstream.bus.memory import MemoryBus
    from krakenstream.config import Settings
    from krakenstream.store.redis import RedisHistoryStore
    from krakenstream.store.sqlite import SQLiteHistoryStore

    s = Settings()
    assert inspect.signature(MemoryBus).parameters["queue_size"].default == s.bus.queue_size
    for store in (SQLiteHistoryStore, RedisHistoryStore):
        limit = inspect.signature(store).parameters["history_limit"].default
        assert limit == s.store.history_limit, store


def test_a_misspelt_section_gets_a_suggestion(tmp_path: Path) -> None:
    """configuration.md promises a suggestion when a name is close: sections too."""
    config = tmp_path / "c.toml"
    config.write_text("[gatway]\nport = 1\n")
    with pytest.raises(ConfigError, match=r"unknown section \[gatway\]") as info:
        load_settings(config, env={"KMS_HOME": str(tmp_path)})
    assert info.value.hint == "did you mean [gateway]?"
    config.write_text("[nothing_like_it]\nport = 1\n")
    with pytest.raises(ConfigError) as info:
        load_settings(config, env={"KMS_HOME": str(tmp_path)})
    assert info.value.hint is not None and "[gateway]" in info.value.hint
    for typo, close in (("KMS_GATWAY_PORT", "KMS_GATEWAY_PORT"), ("KMS_HOMES", "KMS_HOME"),
                        ("KMS_KRAKN_PAIRS", "KMS_KRAKEN_PAIRS")):
        with pytest.raises(ConfigError, match=f"unknown setting {typo} in the environment") as info:
            load_settings(env={typo: "1", "KMS_HOME": str(tmp_path)})
        assert info.value.hint == f"did you mean {close}?"
    with pytest.raises(ConfigError) as info:
        load_settings(env={"KMS_SOMETHING": "1", "KMS_HOME": str(tmp_path)})
    assert info.value.hint is not None and "env | grep ^KMS_" in info.value.hint

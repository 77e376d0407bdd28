"""``kms open``: which address it opens, when it only prints it, and a daemon that is not there.
``webbrowser.open`` is replaced by a recorder; the daemon is a real bare gateway on loopback."""

from __future__ import annotations

import webbrowser
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import Result
from typer.testing import CliRunner

from cli_support import LiveDaemon
from conftest import free_port
from krakenstream.cli import app
from krakenstream.cli.open import can_open_browser, dashboard_url

#: a gateway daemon process of its own
pytestmark = pytest.mark.slow

runner = CliRunner()


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveDaemon]:
    daemon = LiveDaemon(tmp_path_factory.mktemp("open-home"), roles=("gateway",))
    try:
        daemon.start()
        yield daemon
    finally:
        daemon.stop()


@pytest.fixture
def opened(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []

    def fake_open(url: str, *args: object, **kwargs: object) -> bool:
        calls.append(url)
        return True

    monkeypatch.setattr(webbrowser, "open", fake_open)
    return calls


def run(args: list[str], home: Path, **env: str | None) -> Result:
    base: dict[str, str | None] = {"KMS_HOME": str(home), "KMS_VERBOSE": "", "COLUMNS": "200",
                                   "BROWSER": None, "DISPLAY": None, "WAYLAND_DISPLAY": None}
    base.update(env)
    result = runner.invoke(app, args, env=base)
    assert "Traceback" not in result.output, result.output
    return result


def test_opens_the_configured_daemon(gateway: LiveDaemon, opened: list[str],
                                     tmp_path: Path) -> None:
    result = run(["open"], tmp_path, KMS_SERVER=gateway.url, DISPLAY=":0")
    assert result.exit_code == 0, result.output
    assert opened == [gateway.url + "/"]
    assert f"dashboard: {gateway.url}/" in result.output


def test_a_wildcard_gateway_host_is_opened_on_loopback(gateway: LiveDaemon, opened: list[str],
                                                        tmp_path: Path) -> None:
    result = run(["open"], tmp_path, KMS_SERVER=None, KMS_GATEWAY_HOST="0.0.0.0",
                 KMS_GATEWAY_PORT=str(gateway.port), BROWSER="firefox")
    assert result.exit_code == 0, result.output
    assert opened == [f"http://127.0.0.1:{gateway.port}/"]


def test_without_a_display_the_address_is_printed(gateway: LiveDaemon, opened: list[str],
                                                  tmp_path: Path) -> None:
    result = run(["open"], tmp_path, KMS_SERVER=gateway.url)
    assert result.exit_code == 0, result.output
    assert opened == []
    assert f"dashboard: {gateway.url}/" in result.output
    assert "no browser to open here" in result.output
    result = run(["open", "--no-browser", "--server", gateway.url], tmp_path, DISPLAY=":0")
    assert result.exit_code == 0 and opened == []
    assert result.output.strip() == f"dashboard: {gateway.url}/"


def test_no_daemon_no_browser(opened: list[str], tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = run(["open"], tmp_path, KMS_SERVER=url, DISPLAY=":0")
    assert result.exit_code == 1
    assert f"cannot reach the daemon at {url}" in result.output
    assert "hint: kms daemon start" in result.output
    assert opened == []


@pytest.mark.parametrize(("env", "platform", "expected"), [
    ({}, "linux", False),
    ({"DISPLAY": ":0"}, "linux", True),
    ({"WAYLAND_DISPLAY": "wayland-0"}, "linux", True),
    ({"BROWSER": "lynx"}, "linux", True),  # the user's own choice
    ({}, "darwin", True),
    ({}, "win32", True),
])
def test_can_open_browser(env: dict[str, str], platform: str, expected: bool) -> None:
    assert can_open_browser(env, platform) is expected


def test_dashboard_url() -> None:
    assert dashboard_url("http://127.0.0.1:3000") == "http://127.0.0.1:3000/"
    assert dashboard_url("https://kms.example/prefix/") == "https://kms.example/prefix/"

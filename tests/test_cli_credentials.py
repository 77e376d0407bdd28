"""The credentials file: private from its first byte, keyed by server, expiry caught locally."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from krakenstream.cli.credentials import Credential, CredentialsFile, server_key
from krakenstream.config import load_settings
from krakenstream.errors import AuthError, ConfigError


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _later(hours: float) -> str:
    return (datetime.now(UTC) + timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def test_file_lives_under_kms_home_with_mode_0600(kms_home: Path) -> None:
    creds = CredentialsFile.from_settings(load_settings(env=dict(os.environ)))
    assert creds.path == kms_home / "credentials.json"
    cred = Credential("a@example.com", "tok", _later(1))
    creds.save("http://127.0.0.1:3000", cred)
    assert _mode(creds.path) == 0o600
    assert creds.get("http://127.0.0.1:3000") == cred


def test_never_readable_by_others_even_before_the_rename(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a permissive umask, the temporary file is already 0600 when it is renamed."""
    seen: list[int] = []
    real_replace = os.replace

    def spy(src: str | Path, dst: str | Path) -> None:
        seen.append(stat.S_IMODE(os.stat(src).st_mode))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", spy)
    old_umask = os.umask(0)
    try:
        creds = CredentialsFile(tmp_path / "new" / "credentials.json")
        creds.save("http://h:1", Credential("a@example.com", "t1"))
        creds.save("http://h:2", Credential("b@example.com", "t2"))
    finally:
        os.umask(old_umask)
    assert seen == [0o600, 0o600]
    assert _mode(creds.path) == 0o600
    assert _mode(creds.path.parent) == 0o700
    assert sorted(p.name for p in creds.path.parent.iterdir()) == ["credentials.json"]


def test_a_loose_file_is_made_private_by_the_next_write(tmp_path: Path) -> None:
    path = tmp_path / "credentials.json"
    path.write_text('{"servers": {}}')
    path.chmod(0o644)
    CredentialsFile(path).save("http://h:1", Credential("a@example.com", "t"))
    assert _mode(path) == 0o600


def test_keyed_by_server(tmp_path: Path) -> None:
    creds = CredentialsFile(tmp_path / "credentials.json")
    creds.save("http://127.0.0.1:3000", Credential("a@example.com", "token-a"))
    creds.save("https://Remote.Example:8443/", Credential("b@example.com", "token-b"))
    assert creds.require("http://127.0.0.1:3000/").token == "token-a"
    assert creds.require("https://remote.example:8443").token == "token-b"
    assert set(creds.load()) == {"http://127.0.0.1:3000", "https://remote.example:8443"}
    # logging in again replaces that server's token only
    creds.save("http://127.0.0.1:3000", Credential("c@example.com", "token-c"))
    assert creds.require("http://127.0.0.1:3000").email == "c@example.com"
    assert creds.require("https://remote.example:8443").token == "token-b"
    assert creds.remove("http://127.0.0.1:3000") is True
    assert creds.remove("http://127.0.0.1:3000") is False
    assert creds.get("http://127.0.0.1:3000") is None
    assert creds.require("https://remote.example:8443").token == "token-b"


def test_server_key() -> None:
    assert server_key(" HTTP://LocalHost:3000/ ") == "http://localhost:3000"
    assert server_key("http://h:1/prefix/") == "http://h:1/prefix"


def test_missing_token_says_kms_login(tmp_path: Path) -> None:
    creds = CredentialsFile(tmp_path / "credentials.json")
    with pytest.raises(AuthError) as info:
        creds.require("http://127.0.0.1:3000")
    assert info.value.hint == "kms login"
    assert "not logged in to http://127.0.0.1:3000" in str(info.value)


def test_expired_token_is_caught_locally(tmp_path: Path) -> None:
    creds = CredentialsFile(tmp_path / "credentials.json")
    creds.save("http://h:1", Credential("a@example.com", "t", "2026-01-01T00:00:00.000Z"))
    with pytest.raises(AuthError) as info:
        creds.require("http://h:1", now=datetime(2026, 1, 1, 0, 0, 1, tzinfo=UTC))
    assert "expired at 2026-01-01T00:00:00.000Z" in str(info.value)
    assert info.value.hint == "kms login"
    before = datetime(2025, 12, 31, 23, 59, 59, tzinfo=UTC)
    assert creds.require("http://h:1", now=before).token == "t"


def test_expiry_parsing() -> None:
    assert not Credential("a", "t", None).expired()
    assert not Credential("a", "t", _later(1)).expired()
    assert Credential("a", "t", _later(-1)).expired()
    # an offset, and no zone at all (taken as UTC)
    assert Credential("a", "t", "2000-01-01T00:00:00+02:00").expired()
    assert Credential("a", "t", "2000-01-01T00:00:00").expired()
    # a form we cannot read is left to the daemon to judge
    assert not Credential("a", "t", "tomorrow").expired()


@pytest.mark.parametrize("content", [b"{not json", b"[]", b'{"servers": {"x": {"email": 1}}}',
                                     b'{"servers": []}'])
def test_malformed_file_names_itself(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "credentials.json"
    path.write_bytes(content)
    with pytest.raises(ConfigError) as info:
        CredentialsFile(path).load()
    assert str(path) in str(info.value)
    assert info.value.hint is not None and "kms login" in info.value.hint


def test_empty_or_absent_file_is_empty(tmp_path: Path) -> None:
    assert CredentialsFile(tmp_path / "absent.json").load() == {}
    (tmp_path / "empty.json").write_bytes(b"")
    assert CredentialsFile(tmp_path / "empty.json").load() == {}


@pytest.mark.slow
def test_concurrent_logins_to_different_servers_all_kept(tmp_path: Path) -> None:
    # each save reads the file, adds its server and writes it back: two at once must not
    # lose one of the two (separate processes, as two shells running kms login would be)
    path = tmp_path / "credentials.json"
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from krakenstream.cli.credentials import Credential, CredentialsFile\n"
        "f = CredentialsFile(Path(sys.argv[1]))\n"
        "for i in range(40):\n"
        "    f.save(f'http://127.0.0.1:{sys.argv[2]}{i:02d}', Credential('a@b.c', 't'))\n"
    )
    procs = [subprocess.Popen([sys.executable, "-c", code, str(path), str(n)])
             for n in (1, 2, 3)]
    assert [p.wait(timeout=60) for p in procs] == [0, 0, 0]
    assert len(CredentialsFile(path).load()) == 120

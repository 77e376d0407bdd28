"""Tokens: what a valid token says, every way a forged or stale one is refused, and the
signing secret's life (configured, generated once into a 0600 file, refused when exposed)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import stat
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jwt
import pytest

from krakenstream.config import load_settings
from krakenstream.errors import AuthError, ConfigError
from krakenstream.users import Claims, TokenCodec, User, load_secret
from krakenstream.users.tokens import _create_secret_file

SECRET = secrets.token_bytes(32)
USER = User(id=42, email="Alice@example.com", created_at=datetime(2026, 1, 1, tzinfo=UTC))

#: an RSA public key: what an attacker would use as the HMAC secret in a key-confusion attack
PUBLIC_PEM = b"""-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAu1SU1LfVLPHCozMxH2Mo
4lgOEePzNm0tRgeLezV6ffAt0gunVTLw7onLRnrq0/IzW7yWR7QkrmBL7jTKEn5u
+qKhbwKfBstIs+bMY2Zkp18gnTxKLxoS2tFczGkPLPgizskuemMghRniWaoLcyeh
kd3qqGElvW/VDL5AaWTg0nLVkjRo9z+40RQzuVaE8AkAFmxZzow3x+VJYKdjykkJ
0iT9wCS0DRTXu269V264Vf/3jvredZiKRkgwlL9xNAwxXFg0x/XFw005UWVRIkdg
cKWTjpBP2dPwVZ4WWC+9aGVd+Gyn1o0CLelf4rEjGoXbAAEgAqeGUxrcIlbjXfbc
mwIDAQAB
-----END PUBLIC KEY-----
"""


def _public_pem() -> bytes:
    """A fresh RSA public key when ``cryptography`` is installed, else the fixed one above."""
    try:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa
    except ImportError:
        return PUBLIC_PEM
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    return key.public_bytes(serialization.Encoding.PEM,
                            serialization.PublicFormat.SubjectPublicKeyInfo)


def codec(secret: bytes = SECRET, **kw: Any) -> TokenCodec:
    params: dict[str, Any] = {"ttl": 3600, "issuer": "krakenstream", "audience": "krakenstream"}
    params.update(kw)
    return TokenCodec(secret, **params)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def forge(header: dict[str, Any], payload: dict[str, Any], key: bytes | None) -> str:
    """A JWT built by hand, as an attacker would: any header, any key, or no signature."""
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(payload).encode())}"
    sig = b"" if key is None else hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(sig)}"


def good_payload(**changes: Any) -> dict[str, Any]:
    now = int(time.time())
    payload: dict[str, Any] = {
        "sub": "42", "email": "Alice@example.com", "iat": now, "nbf": now, "exp": now + 600,
        "iss": "krakenstream", "aud": "krakenstream", "jti": "abc",
    }
    payload.update(changes)
    return {k: v for k, v in payload.items() if v is not None}


def test_issue_and_verify() -> None:
    c = codec()
    issued = c.issue(USER)
    assert issued.token_type == "bearer" and issued.user == USER
    assert abs(issued.expires_at.timestamp() - (time.time() + 3600)) < 5
    claims = c.verify(issued.token)
    assert claims == Claims(user_id=42, email="Alice@example.com", expires_at=issued.expires_at,
                            jti=claims.jti, issued_at=claims.issued_at, role=USER.role)
    assert len(claims.jti) >= 16 and abs(claims.issued_at - time.time()) < 5
    payload = jwt.decode(issued.token, options={"verify_signature": False})
    assert set(payload) == {"sub", "email", "iat", "nbf", "exp", "iss", "aud", "jti", "role"}
    assert payload["sub"] == "42" and payload["exp"] - payload["iat"] == 3600
    assert jwt.get_unverified_header(issued.token)["alg"] == "HS256"
    # every token is unique, even for the same user in the same second
    assert c.issue(USER).token != issued.token


def test_hand_forged_token_with_the_right_key_is_accepted() -> None:
    """The forging helper is faithful: with the real key it makes a token that passes, so the
    refusals below are the checks at work, not a broken helper."""
    token = forge({"alg": "HS256", "typ": "JWT"}, good_payload(), SECRET)
    assert codec().verify(token).user_id == 42


def test_tampered_payload() -> None:
    token = codec().issue(USER).token
    header, _, sig = token.split(".")
    evil = b64(json.dumps(good_payload(sub="1")).encode())
    with pytest.raises(AuthError, match="signature is invalid"):
        codec().verify(f"{header}.{evil}.{sig}")


def test_tampered_signature() -> None:
    token = codec().issue(USER).token
    flipped = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    with pytest.raises(AuthError, match="signature is invalid"):
        codec().verify(flipped)


def test_wrong_secret() -> None:
    token = codec(secrets.token_bytes(32)).issue(USER).token
    with pytest.raises(AuthError, match="signature is invalid"):
        codec().verify(token)


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE"])
def test_alg_none(alg: str) -> None:
    token = forge({"alg": alg, "typ": "JWT"}, good_payload(), None)
    with pytest.raises(AuthError, match="not allowed"):
        codec().verify(token)
    # also with a signature that is really an HMAC with our key: alg is checked first
    signed = forge({"alg": alg, "typ": "JWT"}, good_payload(), SECRET)
    with pytest.raises(AuthError, match="not allowed"):
        codec().verify(signed)


def test_hs256_signed_with_a_public_key() -> None:
    token = forge({"alg": "HS256", "typ": "JWT"}, good_payload(), _public_pem())
    with pytest.raises(AuthError, match="signature is invalid"):
        codec().verify(token)


@pytest.mark.parametrize("alg", ["RS256", "ES256", "PS256", "HS512", "HS384", "EdDSA"])
def test_other_algorithms_are_refused(alg: str) -> None:
    token = forge({"alg": alg, "typ": "JWT"}, good_payload(), PUBLIC_PEM)
    with pytest.raises(AuthError, match=f"algorithm '{alg}' is not allowed"):
        codec().verify(token)


def test_expired() -> None:
    old = codec(clock=lambda: time.time() - 3600 - 60)
    with pytest.raises(AuthError, match="expired"):
        codec().verify(old.issue(USER).token)


def test_expiry_has_only_a_small_leeway() -> None:
    short = codec(ttl=1, clock=lambda: time.time() - 30)
    with pytest.raises(AuthError, match="expired"):
        codec().verify(short.issue(USER).token)


def test_not_yet_valid() -> None:
    future = codec(clock=lambda: time.time() + 600)
    with pytest.raises(AuthError, match="not valid yet"):
        codec().verify(future.issue(USER).token)
    # a future nbf alone (iat now) is refused too
    token = jwt.encode(good_payload(nbf=int(time.time()) + 600), SECRET, algorithm="HS256")
    with pytest.raises(AuthError, match="not valid yet"):
        codec().verify(token)


def test_wrong_audience() -> None:
    token = codec(audience="someone-else").issue(USER).token
    with pytest.raises(AuthError, match="another audience"):
        codec().verify(token)
    listed = jwt.encode(good_payload(aud=["x", "y"]), SECRET, algorithm="HS256")
    with pytest.raises(AuthError, match="another audience"):
        codec().verify(listed)


def test_wrong_issuer() -> None:
    token = codec(issuer="evil").issue(USER).token
    with pytest.raises(AuthError, match="another issuer"):
        codec().verify(token)


@pytest.mark.parametrize("crit", [["x-kms-unknown"], ["exp"], ["b64"]])
def test_unknown_crit_header(crit: list[str]) -> None:
    header = {"alg": "HS256", "typ": "JWT", "crit": crit, "x-kms-unknown": True}
    token = forge(header, good_payload(), SECRET)
    with pytest.raises(AuthError, match="critical header"):
        codec().verify(token)


@pytest.mark.parametrize("claim", ["exp", "iat", "sub", "iss", "aud", "email"])
def test_missing_claims(claim: str) -> None:
    token = jwt.encode(good_payload(**{claim: None}), SECRET, algorithm="HS256")
    with pytest.raises(AuthError, match=f"lacks the '{claim}' claim"):
        codec().verify(token)


@pytest.mark.parametrize("sub", ["0", "-1", "abc", "1.5", " 7", "99999999999999999999",
                                 str(2**63)])
def test_subject_must_be_a_user_id(sub: str) -> None:
    token = jwt.encode(good_payload(sub=sub), SECRET, algorithm="HS256")
    with pytest.raises(AuthError, match="subject"):
        codec().verify(token)


def test_non_string_claims() -> None:
    with pytest.raises(AuthError, match="invalid"):
        codec().verify(jwt.encode(good_payload(sub=42), SECRET, algorithm="HS256"))
    with pytest.raises(AuthError, match="email claim"):
        codec().verify(jwt.encode(good_payload(email=["a"]), SECRET, algorithm="HS256"))
    with pytest.raises(AuthError):
        codec().verify(jwt.encode(good_payload(exp="tomorrow"), SECRET, algorithm="HS256"))


@pytest.mark.parametrize("garbage", ["", "   ", "abc", "a.b.c", "a.b", "....", "Bearer x.y.z",
                                     "eyJhbGciOiJIUzI1NiJ9.e30", "\x00\x01.\x02.\x03"])
def test_garbage_is_an_auth_error(garbage: str) -> None:
    with pytest.raises(AuthError):
        codec().verify(garbage)


def test_a_deeply_nested_header_is_an_auth_error() -> None:
    # 3,000 "[" fit in a token under the size limit and would exhaust the JSON decoder's stack
    head = base64.urlsafe_b64encode(b"[" * 3000).rstrip(b"=").decode()
    with pytest.raises(AuthError, match="malformed token"):
        codec().verify(f"{head}.e30.c2ln")


def test_oversized_token_is_refused_early() -> None:
    token = jwt.encode(good_payload(pad="x" * 5000), SECRET, algorithm="HS256")
    with pytest.raises(AuthError, match="too long"):
        codec().verify(token)


def test_short_secret_is_refused() -> None:
    with pytest.raises(ConfigError, match="at least 32"):
        codec(b"x" * 31)


# -- the secret -----------------------------------------------------------------------------


def settings_in(home: Path, **env: str) -> Any:
    return load_settings(env={"KMS_HOME": str(home), **env})


def secret_in(settings: Any) -> bytes:
    return load_secret(settings.auth.secret, settings.paths.secret_file)


def test_secret_generated_once_with_mode_0600(tmp_path: Path) -> None:
    home = tmp_path / "home"
    settings = settings_in(home)
    first = secret_in(settings)
    path = settings.paths.secret_file
    assert path == home / "secret"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(first) == 64 and int(first, 16) >= 0  # 32 random bytes, hex
    assert secret_in(settings) == first  # reused, not regenerated
    assert [p.name for p in home.iterdir()] == ["secret"]  # no temporary file left behind
    # a token made with the first load verifies with the second
    token = codec(first).issue(USER).token
    assert codec(secret_in(settings_in(home))).verify(token).user_id == 42


def test_secret_race_keeps_the_first_file(tmp_path: Path) -> None:
    """Two processes starting at once: the one that links second reads the winner's secret."""
    path = tmp_path / "secret"
    winner = b"w" * 64
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.write(fd, winner + b"\n")
    os.close(fd)
    assert _create_secret_file(path) == winner
    assert [p.name for p in tmp_path.iterdir()] == ["secret"]


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660, 0o666])
def test_secret_file_readable_by_others_is_refused(tmp_path: Path, mode: int) -> None:
    settings = settings_in(tmp_path)
    secret_in(settings)
    settings.paths.secret_file.chmod(mode)
    with pytest.raises(ConfigError, match=f"mode {mode:04o}") as info:
        secret_in(settings)
    assert info.value.hint is not None and "chmod 600" in info.value.hint


def test_secret_file_symlink_is_refused(tmp_path: Path) -> None:
    real = tmp_path / "elsewhere"
    real.write_text("x" * 64)
    real.chmod(0o600)
    settings = settings_in(tmp_path / "home")
    settings.paths.secret_file.parent.mkdir()
    settings.paths.secret_file.symlink_to(real)
    # as troubleshooting.md says (it was "cannot read ...: Too many levels of symbolic links")
    with pytest.raises(ConfigError, match="the secret file .* is not a regular file") as info:
        secret_in(settings)
    assert info.value.hint is not None and "delete" in info.value.hint


def test_secret_file_that_is_a_folder_is_refused(tmp_path: Path) -> None:
    settings = settings_in(tmp_path / "home")
    settings.paths.secret_file.mkdir(parents=True)
    with pytest.raises(ConfigError, match="the secret file .* is not a regular file"):
        secret_in(settings)


def test_no_secret_error_points_at_the_config_example(tmp_path: Path) -> None:
    """config.example.toml says nothing of the secret file: its errors hint at the file."""
    settings = settings_in(tmp_path / "a")
    settings.paths.secret_file.mkdir(parents=True)
    cases = [settings]
    settings = settings_in(tmp_path / "b")
    secret_in(settings)
    settings.paths.secret_file.chmod(0o644)
    cases.append(settings)
    settings = settings_in(tmp_path / "c")
    settings.paths.secret_file.parent.mkdir()
    settings.paths.secret_file.write_text("short")
    settings.paths.secret_file.chmod(0o600)
    cases.append(settings)
    cases.append(settings_in(tmp_path / "d", KMS_AUTH_SECRET=PUBLIC_PEM.decode()))
    for case in cases:
        with pytest.raises(ConfigError) as info:
            secret_in(case)
        assert info.value.hint and "config.example.toml" not in info.value.hint, info.value


def test_secret_file_too_short_is_refused(tmp_path: Path) -> None:
    settings = settings_in(tmp_path)
    fd = os.open(settings.paths.secret_file, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, b"short\n")
    os.close(fd)
    with pytest.raises(ConfigError, match="holds 5 bytes"):
        secret_in(settings)


def test_configured_secret_is_used_and_no_file_written(tmp_path: Path) -> None:
    configured = "s" * 40
    settings = settings_in(tmp_path, KMS_AUTH_SECRET=configured)
    assert secret_in(settings) == configured.encode()
    assert not settings.paths.secret_file.exists()


@pytest.mark.parametrize("bad", ["short", "x" * 31, "é" * 15])
def test_configured_secret_too_short(tmp_path: Path, bad: str) -> None:
    with pytest.raises(ConfigError, match="auth.secret is .* bytes; at least 32"):
        secret_in(settings_in(tmp_path, KMS_AUTH_SECRET=bad))


def test_configured_secret_that_is_a_pem_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="PEM"):
        secret_in(settings_in(tmp_path, KMS_AUTH_SECRET=PUBLIC_PEM.decode()))

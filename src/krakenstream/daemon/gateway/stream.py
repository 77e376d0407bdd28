"""``/api/stream/{pair}``: the WebSocket a client follows a pair's snapshots on.

The route authenticates (``Authorization`` header, the subprotocols ``kms.bearer`` + token a
browser can send, or ``?token=``) and checks the pair after the
handshake, so a refusal is a close code the client can act on (:data:`~krakenstream.wire.BAD_TOKEN`,
:data:`~krakenstream.wire.BAD_PAIR`) rather than a bare 403. Then it hands the client to the
app's :class:`.hub.StreamHub` and sends what the hub queues for it until either side closes.

A stream outlives the check made when it opened, so a watcher checks the token again whenever
this gateway changes an account (a logout, a disable: at once) and every ``auth.access_ttl``
seconds otherwise (a change made through another gateway); a token that no longer opens
anything closes the stream with :data:`~krakenstream.wire.TOKEN_REVOKED`.
"""

# no "from __future__ import annotations": FastAPI reads the route signatures at runtime

import asyncio
import contextlib
from collections.abc import Sequence

from fastapi import APIRouter, WebSocket
from starlette.websockets import WebSocketDisconnect

from ...core.pairs import normalize_pair
from ...errors import AuthError, KmsError
from ...users.service import AuthService
from ...users.tokens import Claims
from ...wire import (
    BAD_PAIR,
    BAD_TOKEN,
    BEARER_SUBPROTOCOL,
    TOKEN_REVOKED,
    TOO_MANY_STREAMS,
    classify,
)
from .deps import State
from .hub import StreamClient, send_until_closed
from .middleware import USER_KEY

#: seconds a WebSocket close may wait for the client's socket to take the close frame
WS_CLOSE_TIMEOUT = 2.0
#: the shortest pause between two checks of a stream's token (with ``auth.access_ttl`` 0)
MIN_RECHECK = 0.25

router = APIRouter()


@router.websocket("/api/stream/{pair:path}")
async def stream(websocket: WebSocket, pair: str, gw: State) -> None:
    """Each new snapshot of the pair as ``{"type":"snapshot","data":...}``; feed state
    changes as ``{"type":"status",...}``. Token: ``Authorization``, the subprotocols
    ``kms.bearer, <token>`` (browsers), or ``?token=``."""
    token, subprotocol = ws_token(websocket)
    await websocket.accept(subprotocol=subprotocol)
    try:
        claims = gw.tokens.verify(token or "")
        websocket.scope[USER_KEY] = claims.user_id
        auth = gw.auth()
        await auth.authorize(claims)
    except KmsError as exc:
        await websocket.close(BAD_TOKEN, close_reason(exc))
        return
    try:
        name = normalize_pair(pair)
    except KmsError as exc:
        await websocket.close(BAD_PAIR, close_reason(exc))
        return
    why = gw.hub.refusal(claims.user_id)
    if why is not None:
        await websocket.close(TOO_MANY_STREAMS, why.encode()[:123].decode(errors="ignore"))
        return
    client = gw.hub.add(name, claims.user_id)
    reader = asyncio.create_task(_drain_incoming(websocket, client), name="kms-ws-reader")
    watcher = asyncio.create_task(_watch_token(auth, claims, client), name="kms-ws-token")
    try:
        await send_until_closed(client, websocket.send_text)
        # a client that reads nothing cannot take a close frame either: do not wait on it
        with contextlib.suppress(RuntimeError, OSError, TimeoutError):
            async with asyncio.timeout(WS_CLOSE_TIMEOUT):
                await websocket.close(client.close_code or 1000, client.close_reason)
    except (WebSocketDisconnect, OSError, RuntimeError):
        pass  # the client went away (or the server closed it): nothing left to send
    finally:
        gw.hub.remove(client)
        for task in (reader, watcher):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def ws_token(websocket: WebSocket) -> tuple[str | None, str | None]:
    """The bearer token (the ``Authorization`` header's, else the one offered after
    ``kms.bearer`` among the subprotocols, else the ``token`` query's), and the subprotocol
    to accept with: ``kms.bearer`` when it was offered (a browser cannot set a header on a
    WebSocket, and refuses an answer that names none of the protocols it offered)."""
    offered = subprotocol_token(websocket.scope.get("subprotocols") or [])
    subprotocol = None if offered is None else BEARER_SUBPROTOCOL
    header = websocket.headers.get("authorization")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip(), subprotocol
    if offered is not None:
        return offered, subprotocol
    return websocket.query_params.get("token"), subprotocol


def subprotocol_token(offered: Sequence[str]) -> str | None:
    """The token offered right after ``kms.bearer`` among the client's subprotocols; ``""``
    if ``kms.bearer`` comes last (refused like any bad token); None if it was not offered."""
    for i, name in enumerate(offered):
        if name == BEARER_SUBPROTOCOL:
            return offered[i + 1] if i + 1 < len(offered) else ""
    return None


def close_reason(exc: KmsError) -> str:
    """A close reason: at most 123 bytes of UTF-8 (RFC 6455)."""
    _, code = classify(exc)
    text = f"{code}: {exc.message}"
    return text.encode()[:123].decode(errors="ignore")


async def _watch_token(auth: AuthService, claims: Claims, client: StreamClient) -> None:
    """Close the stream once its token no longer opens anything (see the module doc). A
    users store that cannot be asked keeps the stream open (the access cache's outage rule)."""
    every = max(auth.access.ttl, MIN_RECHECK)
    while True:
        await auth.access.wait_change(every)
        try:
            await auth.authorize(claims)
        except AuthError as exc:
            client.close(TOKEN_REVOKED, close_reason(exc))
            return


async def _drain_incoming(websocket: WebSocket, client: StreamClient) -> None:
    """Read (and ignore) what the client sends, so its close frame is noticed at once."""
    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                break
    except (WebSocketDisconnect, RuntimeError, OSError):
        pass
    client.close(1000, "client closed")

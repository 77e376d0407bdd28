"""uvicorn's HTTP and WebSocket protocols with the two limits it lacks (issue 14 item 9).

* **Headers that never end.** uvicorn's h11 protocol closes an idle keep-alive connection,
  but any byte cancels that timer and nothing else runs while a request's headers trickle
  in: a client that sends ``GET / HTTP/1.1\\r\\n`` and then one byte a minute (or nothing)
  holds its connection, and a file descriptor, for ever. :class:`HeaderTimeoutH11` arms a
  timer whenever the connection waits for a request (when it opens, and after each
  response) that more data does **not** reset; if the request's headers are not complete
  when it fires, the client gets a 408 and the connection is closed.
* **A WebSocket upgrade whose handshake websockets refuses.** h11 accepts header lines up to
  its 16 KB limit, then uvicorn hands the upgrade to websockets, whose own parser refuses a
  header line over 8 KB with a 431 (a request line too long with a 414). websockets queues
  that answer, but uvicorn's sans-I/O protocol only writes answers to requests it was
  handed, so the 431 was never sent and the connection was held open for ever.
  :class:`FlushingWebSocket` writes what websockets queued and closes the connection.

Both are classes uvicorn instantiates per connection; :func:`protocols` makes them with this
gateway's timeout and a callback counting the timeouts (``kms_http_header_timeouts``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import h11
import orjson
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

log = logging.getLogger("krakenstream.gateway")


def timeout_response(seconds: float) -> bytes:
    """The 408 a connection gets when its request's headers did not arrive in time."""
    body = orjson.dumps({"error": f"the request's headers did not arrive within {seconds:g} s",
                         "code": "timeout"})
    return (b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\n"
            b"content-length: " + str(len(body)).encode() + b"\r\nconnection: close\r\n\r\n"
            + body)


class HeaderTimeoutH11(H11Protocol):
    """uvicorn's h11 protocol, closing a connection whose request headers take longer than
    :attr:`header_timeout` seconds from the moment it began waiting for them."""

    header_timeout: float = 10.0
    on_timeout: Callable[[], None] | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # type: ignore[arg-type]
        self._waiting_for_headers()

    def connection_lost(self, exc: Exception | None) -> None:
        self._headers_done()
        super().connection_lost(exc)

    def handle_events(self) -> None:
        super().handle_events()
        self._follow_state()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._follow_state()

    def _follow_state(self) -> None:
        """Armed while the client is to send a request (h11's IDLE), off once it has."""
        if self.transport.is_closing():
            self._headers_done()
        elif self.conn.their_state is h11.IDLE:
            self._waiting_for_headers()
        else:
            self._headers_done()

    def _waiting_for_headers(self) -> None:
        if self._header_timer is None:  # data arriving never pushes the deadline back
            self._header_timer = self.loop.call_later(self.header_timeout, self._expired)

    def _headers_done(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _expired(self) -> None:
        self._header_timer = None
        if self.transport.is_closing() or self.conn.their_state is not h11.IDLE:
            return
        if self.on_timeout is not None:
            self.on_timeout()
        log.debug("http connection closed: no complete request within %g s client=%s",
                  self.header_timeout, self.client)
        self.transport.write(timeout_response(self.header_timeout))
        self.transport.close()


class FlushingWebSocket(WebSocketsSansIOProtocol):
    """uvicorn's websockets (sans-I/O) protocol, sending the answer to a handshake that
    websockets refused before it became a request (431, 414) and closing the connection."""

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if (not self.handshake_initiated and self.conn.handshake_exc is not None
                and not self.transport.is_closing()):
            self.transport.write(b"".join(self.conn.data_to_send()))
            self.transport.close()


def protocols(header_timeout: float, on_timeout: Callable[[], None] | None = None
              ) -> tuple[type[HeaderTimeoutH11], type[FlushingWebSocket]]:
    """The HTTP and WebSocket protocol classes for uvicorn's ``http=`` and ``ws=``."""
    http = type("GatewayH11", (HeaderTimeoutH11,),
                {"header_timeout": header_timeout, "on_timeout": staticmethod(on_timeout)
                 if on_timeout is not None else None})
    return http, FlushingWebSocket

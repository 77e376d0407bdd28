"""The HTTP gateway: the daemon's API (the README's "HTTP gateway") as a FastAPI app on uvicorn.

``create_app(services)`` builds the app over the services of this process; ``make_server``
wraps it in a uvicorn server that leaves signals and logging to the daemon.

Where data comes from: ``latest`` and ``history`` read the history store; an order book is
read live from the orderbook role when it runs in this process, else it is the newest snapshot
the gateway's bus tap has seen (:mod:`.hub`); ``/api/pairs`` asks the orderbook role (503
without it for changes).

The modules, one job each:

- :mod:`.app` assembles the app: lifespan, middleware, error handlers, one router per area
  (its docstring says how to add one);
- the areas, each a ``router`` of plain route functions: :mod:`.users` (``/api/users``:
  register, login, logout, me), :mod:`.admin` (``/api/users`` for admins: accounts and
  roles), :mod:`.history` (``/api/analysis``: latest, history, summary), :mod:`.bars`
  (``/api/analysis/bars``), :mod:`.books`
  (``/api/orderbook``), :mod:`.pairs` (``/api/pairs``), :mod:`.stream` (the WebSocket),
  :mod:`.operations` (``/health``, ``/metrics``), :mod:`.dashboard` (the web page at ``/``
  and its files in ``static/``, outside the API's schema);
- what routes share: :mod:`.deps` (the app's state and the bearer check, as dependencies),
  :mod:`.params` (time windows, bounds that are settings), :mod:`.responses` (JSON answers),
  :mod:`.errors` (every error as JSON, statuses from :mod:`krakenstream.wire`);
- around every request: :mod:`.middleware` (count, time, log, body limit), :mod:`.methods`
  (HEAD wherever GET is, OPTIONS, ``Allow``), :mod:`.logs` (tokens out of uvicorn's log
  lines), :mod:`.tokens` (verified-token cache);
- beside the routes: :mod:`.hub` (the bus tap, WebSocket clients, the latest cache),
  :mod:`.exports` (history bodies as JSON, NDJSON, CSV), :mod:`.server` (uvicorn) and
  :mod:`.protocols` (its HTTP and WebSocket protocols: a header timeout, a refused
  handshake answered).
"""

from __future__ import annotations

from .app import create_app, create_health_app
from .server import GatewayServer, make_server

__all__ = ["GatewayServer", "create_app", "create_health_app", "make_server"]

"""Kraken WebSocket v2 frame decoder: raw text in, one typed event out. Never raises on input.

The decoder is a small state machine: it remembers each pair's precisions from ``instrument``
frames so that book levels come out as exact scaled integers. The fast path decodes with
orjson (floats) and checks every value converts exactly at the pair's precision; a value that
does not (very large, or with more digits than a float holds) sends the frame down a slow path
that re-decodes it with :class:`~decimal.Decimal` numbers, so no digit is ever guessed.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import orjson

from .events import (
    BadFrame,
    BookData,
    BookMessage,
    Event,
    Heartbeat,
    Instrument,
    InstrumentPair,
    Level,
    Pong,
    Precision,
    Status,
    SubscriptionAck,
    Ticker,
    TickerData,
    Trade,
    TradeData,
)
from .numbers import InexactValue, pow10, scale_decimal

#: a float's scaled value is trusted below 10**15 only: any decimal of at most 15 significant
#: digits comes back exactly from its nearest double (DBL_DIG), and then ``round(f * scale)``
#: errs by under 0.25. Between 10**15 and 2**53 two decimals can share a double
#: (829452312479088.3 and .2 at 0.1), so the check by dividing back passes on a wrong value;
#: such values take the exact path.
_LIMIT = 10**15
_HEARTBEAT = Heartbeat()


class Malformed(Exception):
    """Internal: the frame's shape is wrong; the message becomes the BadFrame reason."""


class NeedsExact(Exception):
    """Internal: a float did not convert exactly; decode the frame again with Decimals."""


def _dec(value: Any, name: str) -> Decimal:
    if type(value) is float:
        return Decimal(repr(value))
    if type(value) is int:
        return Decimal(value)
    if isinstance(value, Decimal):
        return value
    raise Malformed(f"{name} is not a number: {value!r}")


def scale_levels_fast(raw: Any, ps: int, qs: int, side: str) -> list[Level]:
    if type(raw) is not list:
        raise Malformed(f"{side} is not a list")
    out: list[Level] = []
    append = out.append
    for lv in raw:
        try:
            p = lv["price"]
            q = lv["qty"]
        except (TypeError, KeyError, IndexError):
            raise Malformed(f"a {side} level is not an object with price and qty") from None
        tp = type(p)
        if tp is float:
            try:
                pn = round(p * ps)
            except OverflowError:  # p * ps is infinite: far past _LIMIT, the exact path decides
                raise NeedsExact from None
            if pn / ps != p or pn >= _LIMIT:
                raise NeedsExact
        elif tp is int:
            pn = p * ps
        else:
            raise Malformed(f"{side} price is not a number: {p!r}")
        tq = type(q)
        if tq is float:
            try:
                qn = round(q * qs)
            except OverflowError:
                raise NeedsExact from None
            if qn / qs != q or qn >= _LIMIT:
                raise NeedsExact
        elif tq is int:
            qn = q * qs
        else:
            raise Malformed(f"{side} qty is not a number: {q!r}")
        if pn <= 0 or qn < 0:
            raise Malformed(f"{side} level has a negative or zero price, or a negative qty")
        append((pn, qn))
    return out


def _scale_levels_exact(raw: Any, prec: Precision, side: str) -> list[Level]:
    if type(raw) is not list:
        raise Malformed(f"{side} is not a list")
    out: list[Level] = []
    for p, q in _raw_levels(raw, side):
        try:
            pn = scale_decimal(p, prec.price)
        except InexactValue:
            raise Malformed(
                f"{side} price {p} has more decimals than the price precision {prec.price}"
            ) from None
        try:
            qn = scale_decimal(q, prec.qty)
        except InexactValue:
            raise Malformed(
                f"{side} qty {q} has more decimals than the qty precision {prec.qty}"
            ) from None
        out.append((pn, qn))
    return out


def _raw_levels(raw: Any, side: str) -> list[tuple[Decimal, Decimal]]:
    if type(raw) is not list:
        raise Malformed(f"{side} is not a list")
    out: list[tuple[Decimal, Decimal]] = []
    for lv in raw:
        try:
            p, q = lv["price"], lv["qty"]
        except (TypeError, KeyError, IndexError):
            raise Malformed(f"a {side} level is not an object with price and qty") from None
        pd, qd = _dec(p, f"{side} price"), _dec(q, f"{side} qty")
        if not pd.is_finite() or not qd.is_finite() or pd <= 0 or qd < 0:
            raise Malformed(f"{side} level has a bad price or qty: {p!r} {q!r}")
        out.append((pd, qd))
    return out


def _loads_exact(text: str | bytes) -> Any:
    return json.loads(text, parse_float=Decimal)


class Decoder:
    """Decode Kraken v2 frames into events, remembering pair precisions.

    ``precisions`` may be shared with other components (the book session) so that a
    precision learned here is known there too.
    """

    __slots__ = ("precisions",)

    def __init__(self, precisions: dict[str, Precision] | None = None) -> None:
        self.precisions: dict[str, Precision] = {} if precisions is None else precisions

    def decode(self, text: str | bytes) -> Event:
        try:
            obj = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            return BadFrame.of(f"not JSON: {exc}", text)
        return self.decode_obj(obj, text)

    def decode_obj(self, obj: Any, text: str | bytes) -> Event:
        """Decode an already JSON-decoded frame (``text`` is kept for the exact slow path)."""
        if type(obj) is not dict:
            return BadFrame.of("frame is not a JSON object", text)
        try:
            channel = obj.get("channel")
            if channel == "book":
                try:
                    return self._book(obj, exact=False)
                except NeedsExact:
                    return self._book(_loads_exact(text), exact=True)
            if channel == "heartbeat":
                return _HEARTBEAT
            if channel is not None:
                return self._channel(channel, obj)
            method = obj.get("method")
            if method is not None:
                return self._method(method, obj)
            if type(obj.get("error")) is str:
                # an error answer that leaves its method out: still matched by req_id
                return self._answer("", obj)
            return BadFrame.of("frame has neither channel nor method", text)
        except Malformed as exc:
            return BadFrame.of(str(exc), text)
        except (ValueError, TypeError, KeyError, AttributeError, RecursionError) as exc:
            # a shape we did not foresee: still never raise on input
            return BadFrame.of(f"malformed frame ({type(exc).__name__}: {exc})", text)

    # -- book ---------------------------------------------------------------------------

    def _book(self, obj: dict[str, Any], *, exact: bool) -> BookMessage:
        kind = obj.get("type")
        if kind != "snapshot" and kind != "update":
            raise Malformed(f"book frame type is {kind!r}, not snapshot or update")
        data = obj.get("data")
        if type(data) is not list or not data:
            raise Malformed("book frame has no data list")
        out: list[BookData] = []
        precisions = self.precisions
        for item in data:
            if type(item) is not dict:
                raise Malformed("book data item is not an object")
            symbol = item.get("symbol")
            if type(symbol) is not str or not symbol:
                raise Malformed("book data has no symbol")
            checksum = item.get("checksum")
            if type(checksum) is not int or not 0 <= checksum < 2**32:
                raise Malformed(f"book data for {symbol} has no valid checksum")
            ts = item.get("timestamp")
            if ts is not None and type(ts) is not str:
                raise Malformed(f"book data for {symbol} has a non-string timestamp")
            raw_b = item.get("bids", [])
            raw_a = item.get("asks", [])
            prec = precisions.get(symbol)
            if prec is None:
                if not exact:
                    raise NeedsExact  # keep every digit for the precision inference
                out.append(
                    BookData(
                        symbol, [], [], checksum, ts, None,
                        _raw_levels(raw_b, "bids"), _raw_levels(raw_a, "asks"),
                    )
                )
            elif exact:
                out.append(
                    BookData(
                        symbol,
                        _scale_levels_exact(raw_b, prec, "bids"),
                        _scale_levels_exact(raw_a, prec, "asks"),
                        checksum, ts, prec,
                    )
                )
            else:
                ps, qs = pow10(prec.price), pow10(prec.qty)
                out.append(
                    BookData(
                        symbol,
                        scale_levels_fast(raw_b, ps, qs, "bids"),
                        scale_levels_fast(raw_a, ps, qs, "asks"),
                        checksum, ts, prec,
                    )
                )
        return BookMessage(kind, out)

    # -- other channels -----------------------------------------------------------------

    def _channel(self, channel: Any, obj: dict[str, Any]) -> Event:
        if channel == "status":
            data = obj.get("data")
            if type(data) is not list or not data or type(data[0]) is not dict:
                raise Malformed("status frame has no data")
            d = data[0]
            system = d.get("system")
            if type(system) is not str:
                raise Malformed("status frame has no system state")
            cid = d.get("connection_id")
            return Status(
                system=system,
                api_version=_opt_str(d.get("api_version")),
                connection_id=cid if type(cid) is int else None,
                version=_opt_str(d.get("version")),
            )
        if channel == "instrument":
            return self._instrument(obj)
        if channel == "trade":
            return Trade(type=str(obj.get("type", "update")), data=[
                TradeData(
                    symbol=_req_str(t, "symbol"),
                    side=_req_str(t, "side"),
                    price=_dec(t.get("price"), "trade price"),
                    qty=_dec(t.get("qty"), "trade qty"),
                    ord_type=_opt_str(t.get("ord_type")),
                    trade_id=t.get("trade_id") if type(t.get("trade_id")) is int else None,
                    timestamp=_opt_str(t.get("timestamp")),
                )
                for t in _data_list(obj, "trade")
            ])
        if channel == "ticker":
            return Ticker(type=str(obj.get("type", "update")), data=[
                TickerData(
                    symbol=_req_str(t, "symbol"),
                    **{k: _dec(t.get(k), f"ticker {k}") for k in _TICKER_FIELDS},
                )
                for t in _data_list(obj, "ticker")
            ])
        raise Malformed(f"unknown channel {channel!r}")

    def _instrument(self, obj: dict[str, Any]) -> Instrument:
        data = obj.get("data")
        if type(data) is not dict:
            raise Malformed("instrument data is not an object")
        pairs_raw = data.get("pairs", [])
        if type(pairs_raw) is not list:
            raise Malformed("instrument pairs is not a list")
        pairs: list[InstrumentPair] = []
        for p in pairs_raw:
            if type(p) is not dict:
                raise Malformed("instrument pair is not an object")
            symbol = _req_str(p, "symbol")
            pp, qp = p.get("price_precision"), p.get("qty_precision")
            if type(pp) is not int or type(qp) is not int or not (0 <= pp <= 30 and 0 <= qp <= 30):
                raise Malformed(f"instrument {symbol} has bad precisions {pp!r}/{qp!r}")
            pi, qi = p.get("price_increment"), p.get("qty_increment")
            pairs.append(
                InstrumentPair(
                    symbol=symbol,
                    price_precision=pp,
                    qty_precision=qp,
                    price_increment=None if pi is None else _dec(pi, "price_increment"),
                    qty_increment=None if qi is None else _dec(qi, "qty_increment"),
                    status=str(p.get("status", "online")),
                )
            )
        precisions = self.precisions
        for ip in pairs:
            new = Precision(ip.price_precision, ip.qty_precision)
            # an unchanged precision keeps its object: the session's hot path checks identity
            if precisions.get(ip.symbol) != new:
                precisions[ip.symbol] = new
        kind = obj.get("type")
        return Instrument(type="update" if kind == "update" else "snapshot", pairs=pairs)

    def _method(self, method: Any, obj: dict[str, Any]) -> Event:
        req_id = obj.get("req_id")
        req_id = req_id if type(req_id) is int else None
        if method == "pong":
            return Pong(req_id=req_id)
        if method in ("subscribe", "unsubscribe"):
            return self._answer(method, obj)
        raise Malformed(f"unknown method {method!r}")

    def _answer(self, method: str, obj: dict[str, Any]) -> SubscriptionAck:
        """A subscribe/unsubscribe answer (``method`` "" when the frame left it out)."""
        req_id = obj.get("req_id")
        success = obj.get("success")
        if type(success) is not bool:
            raise Malformed(f"{method or 'error'} answer has no success flag")
        result = obj.get("result")
        result = result if type(result) is dict else {}
        symbol = result.get("symbol", obj.get("symbol"))
        depth = result.get("depth")
        error = obj.get("error")
        return SubscriptionAck(
            method=method,
            req_id=req_id if type(req_id) is int else None,
            success=success,
            channel=_opt_str(result.get("channel")),
            symbol=symbol if type(symbol) is str else None,
            depth=depth if type(depth) is int else None,
            error=None if success else (str(error) if error is not None else "unknown error"),
        )


_TICKER_FIELDS = (
    "bid", "bid_qty", "ask", "ask_qty", "last", "volume", "vwap", "low", "high", "change",
    "change_pct",
)


def _opt_str(v: Any) -> str | None:
    return v if type(v) is str else None


def _req_str(d: Any, key: str) -> str:
    if type(d) is not dict:
        raise Malformed("data item is not an object")
    v = d.get(key)
    if type(v) is not str:
        raise Malformed(f"{key} is missing or not a string")
    return v


def _data_list(obj: dict[str, Any], channel: str) -> list[Any]:
    data = obj.get("data")
    if type(data) is not list:
        raise Malformed(f"{channel} frame has no data list")
    return data


def decode(text: str | bytes) -> Event:
    """Decode one frame without remembered precisions (book levels come out as Decimals)."""
    return Decoder().decode(text)

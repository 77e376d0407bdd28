"""``daemon/gateway/slots.py``: at most ``size`` heavy reads at once, one more refused at once
(503, ``Retry-After``), each slot given back once: when its answer is sent or has failed."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.routing import Route

from krakenstream.daemon.gateway.slots import RETRY_AFTER, HeldStreamingResponse, Slots
from krakenstream.errors import Overloaded


def test_size_slots_then_a_refusal_naming_the_setting() -> None:
    refusals: list[None] = []
    slots = Slots("exports", 2, "gateway.max_exports", on_refusal=lambda: refusals.append(None))
    a, b = slots.take(), slots.take()
    with pytest.raises(Overloaded) as caught:
        slots.take()
    assert caught.value.retry_after == RETRY_AFTER
    assert str(caught.value) == ("2 exports are running, the most at once "
                                 f"(gateway.max_exports): try again in {RETRY_AFTER} s")
    assert slots.state() == {"busy": 2, "size": 2, "refused": 1} and len(refusals) == 1
    a.release()
    a.release()  # once, however often
    assert slots.busy == 1
    c = slots.take()
    assert slots.state() == {"busy": 2, "size": 2, "refused": 1}
    b.release()
    c.release()
    assert slots.busy == 0


def test_a_dropped_slot_is_given_back() -> None:
    slots = Slots("summaries", 1, "gateway.max_summaries")
    slots.take()  # never released by hand: collected at once
    gc.collect()
    assert slots.busy == 0
    slots.take()  # and so free again


async def test_a_streamed_answer_holds_its_slot_until_sent_or_failed() -> None:
    slots = Slots("exports", 1, "gateway.max_exports")
    seen: list[int] = []

    async def body(fail: bool) -> AsyncIterator[bytes]:
        seen.append(slots.busy)  # held while the body is produced
        yield b"ts,mid\n"
        if fail:
            raise RuntimeError("the store went away mid-export")
        yield b"1,2\n"

    async def export(request: Request) -> HeldStreamingResponse:
        fail = request.query_params.get("fail") == "1"
        return HeldStreamingResponse(body(fail), slots.take(), media_type="text/csv")

    app = Starlette(routes=[Route("/export", export)])
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        r = await client.get("/export")
        assert r.text == "ts,mid\n1,2\n"
        assert slots.busy == 0
        r = await client.get("/export?fail=1")
        assert r.text == "ts,mid\n"  # the answer broke off
        assert slots.busy == 0  # and the slot is given back all the same
        r = await client.get("/export")  # and taken again
        assert r.status_code == 200
    assert seen == [1, 1, 1] and slots.refused == 0

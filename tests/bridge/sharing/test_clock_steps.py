"""Shares when the wall clock steps: NTP setting a stale clock, a clock set back.

A request's deadline and a link's lifetime are durations: a step of the clock must
neither end them early nor make them last longer than promised.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
import json
from typing import Any

import pytest

from doorstep_bridge.events import ShareStateChanged
from doorstep_bridge.sharing.audit import verify
from doorstep_bridge.sharing.requests import MQTT_REQUESTS_PER_MINUTE
from doorstep_bridge.sharing.state import ShareGoneError

from .conftest import Harness


def state(harness: Harness, share_id: str) -> dict[str, Any]:
    view = harness.service.get(share_id)
    assert view is not None
    return view.payload()


async def ready_link(harness: Harness) -> tuple[str, str]:
    """A share approved and rendered: its id and its link's token."""
    share = (await harness.service.create_request(harness.request(), "http")).payload()
    await harness.service.decide(share["id"], "approve", "owner", "phone")
    ready = await harness.wait_state(share["id"], "ready", "failed", "empty")
    assert ready["state"] == "ready", ready
    return share["id"], ready["link"].removeprefix("/share/")


async def test_a_link_does_not_outlive_its_lifetime_when_the_clock_is_set_back(
    harness: Harness,
) -> None:
    share_id, token = await ready_link(harness)
    promised = datetime.fromisoformat(state(harness, share_id)["link_expires"])
    harness.clock.step(hours=-5)  # the clock was 5 h ahead; NTP sets it right
    await harness.service.tick()
    # The link's end moved with the clock: still 24 h from when it was given.
    assert datetime.fromisoformat(state(harness, share_id)["link_expires"]) == promised - (
        timedelta(hours=5)
    )
    published = [e["link_expires"] for e in harness.states if e["id"] == share_id]
    assert published[-1] == state(harness, share_id)["link_expires"]

    harness.clock.advance(hours=24)  # 24 h really pass
    with pytest.raises(ShareGoneError):
        await harness.service.download(token, "192.0.2.50", "curl/8")
    assert state(harness, share_id)["state"] == "expired"


async def test_a_link_keeps_working_when_ntp_sets_a_stale_clock(harness: Harness) -> None:
    share_id, token = await ready_link(harness)
    harness.clock.step(days=3)  # booted 3 days behind, then NTP answered
    harness.clock.advance(hours=23)
    download = await harness.service.download(token, "192.0.2.50", "curl/8")
    assert download.path.exists()
    harness.clock.advance(hours=1)
    await harness.service.tick()
    assert state(harness, share_id)["state"] == "expired"


async def test_a_request_waits_its_whole_deadline_after_ntp_sets_a_stale_clock(
    harness: Harness,
) -> None:
    share = (await harness.service.create_request(harness.request(), "http")).payload()
    harness.clock.step(days=3)
    await harness.service.tick()
    now = state(harness, share["id"])
    assert now["state"] == "pending"
    assert datetime.fromisoformat(now["deadline"]) == harness.clock.now + timedelta(minutes=60)
    harness.clock.advance(minutes=59)
    approved = await harness.service.decide(share["id"], "approve", "owner", "phone")
    assert approved.payload()["state"] == "approved"


async def test_a_step_is_audited_with_the_shares_it_moved(harness: Harness) -> None:
    share = (await harness.service.create_request(harness.request(), "http")).payload()
    harness.clock.step(hours=-2)
    await harness.service.tick()
    step = next(r for r in harness.audit.records() if r["kind"] == "clock_step")
    assert step["seconds"] == -7200
    assert step["shares"] == [share["id"]]
    # Once: the clock that stepped is the one measured from now on.
    harness.clock.advance(minutes=1)
    await harness.service.tick()
    assert harness.kinds().count("clock_step") == 1
    assert verify(harness.audit.path).ok


async def test_deadlines_from_before_a_restart_are_not_moved(harness: Harness) -> None:
    """They were set by an earlier run's clock: a step now says nothing about that one."""
    share = (await harness.service.create_request(harness.request(), "http")).payload()
    await harness.restart()
    await harness.service.tick()
    harness.clock.step(hours=2)  # this run's clock was behind, the earlier run's right
    await harness.service.tick()
    assert state(harness, share["id"])["state"] == "expired"
    step = next(r for r in harness.audit.records() if r["kind"] == "clock_step")
    assert step["shares"] == []


async def test_mqtt_requests_are_taken_again_a_minute_after_the_clock_is_set_back(
    harness: Harness,
) -> None:
    events: list[ShareStateChanged] = []
    harness.bus.subscribe(ShareStateChanged, events.append)
    for _ in range(MQTT_REQUESTS_PER_MINUTE):
        harness.service.handle_mqtt_request(b"junk")
    harness.clock.step(minutes=-20)  # not back before the footage asked for
    harness.clock.advance(seconds=61)
    harness.service.handle_mqtt_request(json.dumps(harness.request(request_id="ok")).encode())
    async with asyncio.timeout(10):
        while len(events) <= MQTT_REQUESTS_PER_MINUTE:
            harness.changed.clear()
            await harness.changed.wait()
    answers = [event.view.payload() for event in events if event.view is not None]
    assert not [a for a in answers if "too many" in (a["error"] or "")]
    assert [a["state"] for a in answers if a["request_id"] == "ok"] == ["pending"]

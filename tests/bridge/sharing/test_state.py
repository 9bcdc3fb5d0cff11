"""The share state machine: exactly the documented transitions, nothing else."""

from __future__ import annotations

from datetime import UTC, datetime
import itertools
import json

import pytest

from doorstep_bridge.sharing.state import (
    TRANSITIONS,
    RejectedRequest,
    Share,
    ShareConflictError,
    ShareState,
    ShareView,
    check_transition,
)

ALLOWED = {
    (ShareState.PENDING, ShareState.APPROVED),
    (ShareState.PENDING, ShareState.DENIED),
    (ShareState.PENDING, ShareState.EXPIRED),
    (ShareState.APPROVED, ShareState.RENDERING),
    (ShareState.APPROVED, ShareState.REVOKED),
    (ShareState.APPROVED, ShareState.FAILED),
    (ShareState.RENDERING, ShareState.READY),
    (ShareState.RENDERING, ShareState.EMPTY),
    (ShareState.RENDERING, ShareState.FAILED),
    (ShareState.RENDERING, ShareState.REVOKED),
    (ShareState.READY, ShareState.EXPIRED),
    (ShareState.READY, ShareState.REVOKED),
}


@pytest.mark.parametrize(("old", "new"), list(itertools.product(ShareState, ShareState)))
def test_transition(old: ShareState, new: ShareState) -> None:
    if (old, new) in ALLOWED:
        check_transition(old, new)
    else:
        with pytest.raises(ShareConflictError, match=f"a share that is {old} cannot become {new}"):
            check_transition(old, new)


def test_nothing_reaches_ready_without_an_approval_first() -> None:
    # Every path to "ready" in the bridge's own table passes through "approved".
    reachable_without_approval = {ShareState.PENDING}
    frontier = [ShareState.PENDING]
    while frontier:
        state = frontier.pop()
        for new in TRANSITIONS.get(state, frozenset()):
            if new is not ShareState.APPROVED and new not in reachable_without_approval:
                reachable_without_approval.add(new)
                frontier.append(new)
    assert ShareState.READY not in reachable_without_approval


def test_a_rejection_has_the_shape_of_a_share_state() -> None:
    """One state JSON on ``<b>/share/<id>``: a rejection has a share's keys, in its order."""
    now = datetime(2026, 11, 23, 10, 15, 2, 417000, tzinfo=UTC)
    share = Share(
        id="s_7Q2M9X4KAB", state=ShareState.PENDING, requester="Alice", cameras=("front_door",),
        start=now, end=now, reason="Parcel", created=now, deadline=now, source="mqtt",
    )  # fmt: skip
    rejection = RejectedRequest(
        id="s_7Q2M9X4KAC", created=now, error="end must be after start", start=now
    )
    assert list(rejection.payload()) == list(share.payload())
    assert json.dumps(rejection.payload()) == (
        '{"id": "s_7Q2M9X4KAC", "state": "rejected", "requester": null, "cameras": [], '
        '"start": "2026-11-23T10:15:02.417+00:00", "end": null, "reason": null, '
        '"created": "2026-11-23T10:15:02.417+00:00", "deadline": null, "decision": null, '
        '"progress": null, "link": null, "link_expires": null, '
        '"error": "end must be after start", "request_id": null, '
        '"kind": null, "legal": null, "approvals": [], "revoked_by": null}'
    )
    # A share's state is the record with its link, which only a ready share shows.
    view = ShareView(share, "/share/token")
    assert view.payload() == share.payload()
    assert view.payload()["link"] is None
    ready = ShareView(share.changed(state=ShareState.READY), "/share/token")
    assert ready.payload()["link"] == "/share/token"

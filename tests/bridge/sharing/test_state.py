"""The share state machine: exactly the documented transitions, nothing else."""

from __future__ import annotations

import itertools

import pytest

from doorstep_bridge.sharing.state import (
    TRANSITIONS,
    ShareConflictError,
    ShareState,
    check_transition,
)

S = ShareState
ALLOWED = {
    (S.PENDING, S.APPROVED),
    (S.PENDING, S.DENIED),
    (S.PENDING, S.EXPIRED),
    (S.APPROVED, S.RENDERING),
    (S.APPROVED, S.REVOKED),
    (S.APPROVED, S.FAILED),
    (S.RENDERING, S.READY),
    (S.RENDERING, S.EMPTY),
    (S.RENDERING, S.FAILED),
    (S.RENDERING, S.REVOKED),
    (S.READY, S.EXPIRED),
    (S.READY, S.REVOKED),
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
    reachable_without_approval = {S.PENDING}
    frontier = [S.PENDING]
    while frontier:
        state = frontier.pop()
        for new in TRANSITIONS.get(state, frozenset()):
            if new is not S.APPROVED and new not in reachable_without_approval:
                reachable_without_approval.add(new)
                frontier.append(new)
    assert S.READY not in reachable_without_approval

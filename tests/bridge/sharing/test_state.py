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

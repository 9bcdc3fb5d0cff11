"""A healthy installation on this Home Assistant: no repair to act on, no deprecation report.

Home Assistant reports a custom integration's use of a deprecated API in its log
("Detected that custom integration 'doorstep' ...") and turns configuration it will stop
reading into repairs; either would reach users of that version.
"""

from __future__ import annotations

import re

import aiohttp
import pytest

from tests.e2e.ha_client import HaClient
from tests.e2e.stack import Stack

pytestmark = pytest.mark.slow

#: Repairs about how this test's Home Assistant is installed (a Core install in a venv, which
#: current releases deprecate for users), not about anything Doorstep or its set-up does.
INSTALLATION_REPAIRS = frozenset({"homeassistant.deprecated_method"})
#: What Home Assistant logs when a custom integration calls an API it deprecated.
DEPRECATION = re.compile(r"custom integration '?doorstep'?.*(deprecat|will stop|breaks)", re.I)


async def test_no_repairs_after_setup(stack: Stack) -> None:
    async with aiohttp.ClientSession() as session:
        owner = HaClient(session, stack.ha.url, stack.owner_token)
        async with owner.websocket() as ws:
            result = await ws.call(type="repairs/list_issues")
    issues = [
        f"{issue['domain']}.{issue['issue_id']}"
        for issue in result["issues"]
        if not issue.get("ignored") and issue.get("active", True)
    ]
    issues = [issue for issue in issues if issue not in INSTALLATION_REPAIRS]
    assert issues == [], f"repairs raised on a healthy installation: {issues}"


def test_no_deprecation_reported_about_doorstep(stack: Stack) -> None:
    log = stack.ha.service.log_path.read_text(errors="replace")
    reports = [line for line in log.splitlines() if DEPRECATION.search(line)]
    assert reports == [], "\n".join(reports)

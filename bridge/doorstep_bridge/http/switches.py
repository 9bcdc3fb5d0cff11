"""Camera switches (motion detection, recording) over the authenticated HTTP API.

Turning a switch off lowers the doorbell's protection, so MQTT, where anyone who
can reach the broker may write, can only turn switches on; off takes the API
token, which the token middleware requires here (every route is under /api/).
The new state still reaches MQTT the usual way (``<b>/<cam>/<switch>``, retained).
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from doorstep_bridge.http.auth import json_error, shown
from doorstep_bridge.http.body import read_body
from doorstep_bridge.keys import CAMERAS, CONFIG
from doorstep_bridge.mqtt.topics import SWITCHES

routes = web.RouteTableDef()

_BODY_HINT = 'expected a JSON body {"on": true} or {"on": false}'


def _parse_on(raw: bytes) -> bool | None:
    """The ``on`` of a body ``{"on": true|false}``; None for anything else."""
    try:
        data: Any = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        # RecursionError: JSON nested deeper than the parser follows ('[' * 60000).
        return None
    if not isinstance(data, dict) or set(data) != {"on"} or not isinstance(data["on"], bool):
        return None
    on: bool = data["on"]
    return on


@routes.put("/api/cameras/{camera}/switches/{switch}")
async def set_switch(request: web.Request) -> web.Response:
    """Turn a camera's switch on or off → ``{"camera", "switch", "on"}``, the state now."""
    camera = request.match_info["camera"]
    switch = request.match_info["switch"]
    if camera not in request.app[CONFIG].cameras:
        return json_error(404, f"unknown camera {shown(camera)}")
    if switch not in SWITCHES:
        return json_error(400, f"unknown switch {shown(switch)}: expected {' or '.join(SWITCHES)}")
    on = _parse_on(await read_body(request))
    if on is None:
        return json_error(400, _BODY_HINT)
    request.app[CAMERAS].set_switch(camera, switch, on, via="HTTP API")
    status = request.app[CAMERAS].status(camera)
    now_on = status.motion_detection if switch == "motion_detection" else status.recording
    return web.json_response({"camera": camera, "switch": switch, "on": now_on})

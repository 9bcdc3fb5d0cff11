"""The ring-notification blueprint: valid, picture through HA, opens the live view, one per camera."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from homeassistant.components.blueprint import models, schemas
from homeassistant.util.yaml import load_yaml_dict

BLUEPRINT = Path(__file__).resolve().parents[3] / "blueprints/automation/doorstep/ring_notify.yaml"


def _load() -> dict[str, Any]:
    return load_yaml_dict(str(BLUEPRINT))


def test_blueprint_is_valid() -> None:
    blueprint = models.Blueprint(
        _load(), expected_domain="automation", schema=schemas.BLUEPRINT_SCHEMA
    )
    assert set(blueprint.inputs) == {"doorbell", "camera", "phone", "title", "message"}


def test_the_notification_points_at_home_assistant_never_carries_footage() -> None:
    data = _load()
    assert data["conditions"][0]["value_template"].count("'ring'") == 1
    (notify,) = data["actions"]
    assert (notify["domain"], notify["type"]) == ("mobile_app", "notify")
    push = notify["data"]
    assert push["image"] == "/api/camera_proxy/{{ camera }}"  # a path: the app logs in
    assert push["tag"] == "doorstep-ring-{{ camera }}"  # the second ring replaces the first
    assert push["clickAction"] == push["url"] == "entityId:{{ camera }}"  # the live view
    assert push["actions"][0]["uri"] == "entityId:{{ camera }}"

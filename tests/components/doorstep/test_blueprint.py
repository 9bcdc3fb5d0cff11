"""The ask-on-phone blueprint is valid and only acts on its approver's tap."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from homeassistant.components.blueprint import models, schemas
from homeassistant.util.yaml import load_yaml_dict

BLUEPRINT = (
    Path(__file__).resolve().parents[3]
    / "blueprints"
    / "automation"
    / "doorstep"
    / "ask_on_phone.yaml"
)


def _load() -> dict[str, Any]:
    return load_yaml_dict(str(BLUEPRINT))


def test_blueprint_is_valid() -> None:
    blueprint = models.Blueprint(
        _load(), expected_domain="automation", schema=schemas.BLUEPRINT_SCHEMA
    )
    assert set(blueprint.inputs) == {"approver", "phone", "include_requester", "redact", "timeout"}
    assert blueprint.domain == "automation"


def test_blueprint_decides_only_on_the_approvers_fresh_tap() -> None:
    data = _load()
    assert data["triggers"][0]["event_type"] == "doorstep_share_requested"
    variables = data["variables"]
    # Per-run action ids, never the integration's DOORSTEP_ prefix.
    assert "context.id" in variables["approve_action"]
    assert "context.id" in variables["deny_action"]
    assert not variables["approve_action"].startswith("DOORSTEP_")
    wait, condition, decision = data["actions"][1:]
    assert wait["continue_on_timeout"] is False
    assert "wait.trigger.event.context.user_id == approver_user" in condition["value_template"]
    assert decision["then"][0]["action"] == "doorstep.approve_share"
    assert decision["else"][0]["action"] == "doorstep.deny_share"
    # Nothing but text goes to the phone.
    notify = data["actions"][0]
    assert set(notify["data"]) == {"tag", "actions"}

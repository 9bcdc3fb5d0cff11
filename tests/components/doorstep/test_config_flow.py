"""Config, reauth, reconfigure and options flows: every step, error and abort."""

from __future__ import annotations

from collections.abc import Iterator
from http import HTTPStatus
import json
from typing import Any
from unittest.mock import AsyncMock, patch

from homeassistant.config_entries import SOURCE_MQTT, SOURCE_USER, ConfigEntryState
from homeassistant.const import CONF_API_TOKEN, CONF_URL
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import translation
from homeassistant.helpers.service_info.mqtt import MqttServiceInfo
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry, MockUser
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator
import voluptuous as vol

from custom_components.doorstep.const import (
    CONF_ANNOUNCED_URL,
    CONF_APPROVERS,
    CONF_BASE_TOPIC,
    CONF_LINK_TTL_HOURS,
    CONF_NOTIFICATION_DETAIL,
    CONF_NOTIFY_SERVICES,
    CONF_OFFER_UNREDACTED,
    DOMAIN,
)

from .conftest import BASE, BRIDGE_ID, TOKEN, FakeBridge


@pytest.fixture(autouse=True)
def no_setup() -> Iterator[AsyncMock]:
    """Flows only: creating an entry must not start the integration."""
    with patch("custom_components.doorstep.async_setup_entry", return_value=True) as mock:
        yield mock


def discovery(bridge: FakeBridge, **changes: Any) -> MqttServiceInfo:
    payload = {**bridge.info(), **changes}
    return MqttServiceInfo(
        topic=f"doorstep/discovery/{payload.get('id', 'x')}",
        payload=json.dumps(payload),
        qos=1,
        retain=True,
        subscribed_topic="doorstep/discovery/#",
        timestamp=0,
    )


def user_input(bridge: FakeBridge, **changes: str) -> dict[str, str]:
    return {CONF_BASE_TOPIC: BASE, CONF_URL: bridge.url, CONF_API_TOKEN: TOKEN, **changes}


async def test_user_creates_entry(hass: HomeAssistant, bridge: FakeBridge) -> None:
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "user"
    result = await hass.config_entries.flow.async_configure(result["flow_id"], user_input(bridge))
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == "Doorstep"
    assert result["data"] == user_input(bridge)
    assert result["result"].unique_id == BRIDGE_ID


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"token": "wrong"}, "invalid_auth"),
        ({"broken": True}, "cannot_connect"),
        ({"protocol": 2}, "incompatible_protocol"),
        ({"base_topic": "elsewhere"}, "base_topic_mismatch"),
    ],
)
async def test_user_errors_then_recovers(
    hass: HomeAssistant, bridge: FakeBridge, change: dict[str, Any], error: str
) -> None:
    good = {k: getattr(bridge, k) for k in change}
    for key, value in change.items():
        setattr(bridge, key, value)
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    result = await hass.config_entries.flow.async_configure(result["flow_id"], user_input(bridge))
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": error}
    for key, value in good.items():
        setattr(bridge, key, value)
    result = await hass.config_entries.flow.async_configure(result["flow_id"], user_input(bridge))
    assert result["type"] is FlowResultType.CREATE_ENTRY


async def test_user_unreachable_and_unexpected(hass: HomeAssistant, bridge: FakeBridge) -> None:
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], user_input(bridge, url="http://127.0.0.1:1")
    )
    assert result["errors"] == {"base": "cannot_connect"}
    with patch(
        "custom_components.doorstep.config_flow.DoorstepApiClient.info",
        side_effect=RuntimeError("surprise"),
    ):
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"], user_input(bridge)
        )
    assert result["errors"] == {"base": "unknown"}


async def test_user_already_configured(hass: HomeAssistant, bridge: FakeBridge) -> None:
    MockConfigEntry(domain=DOMAIN, unique_id=BRIDGE_ID, data=user_input(bridge)).add_to_hass(hass)
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    result = await hass.config_entries.flow.async_configure(result["flow_id"], user_input(bridge))
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"


async def test_mqtt_discovery_confirm(hass: HomeAssistant, bridge: FakeBridge) -> None:
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_MQTT}, data=discovery(bridge)
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "confirm"
    assert result["description_placeholders"] == {"name": "Doorstep", "cameras": "1"}
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_URL: bridge.url, CONF_API_TOKEN: "wrong"}
    )
    assert result["errors"] == {"base": "invalid_auth"}
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_URL: bridge.url, CONF_API_TOKEN: TOKEN}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"] == user_input(bridge, announced_url=bridge.url)
    assert result["result"].unique_id == BRIDGE_ID


@pytest.mark.parametrize(
    "info",
    [
        MqttServiceInfo(topic="doorstep/discovery/x", payload="", qos=1, retain=True,
                        subscribed_topic="doorstep/discovery/#", timestamp=0),
        MqttServiceInfo(topic="doorstep/discovery/x", payload="[1]", qos=1, retain=True,
                        subscribed_topic="doorstep/discovery/#", timestamp=0),
        MqttServiceInfo(topic="elsewhere/x", payload="{}", qos=1, retain=True,
                        subscribed_topic="doorstep/discovery/#", timestamp=0),
    ],
)  # fmt: skip
async def test_mqtt_invalid_discovery(hass: HomeAssistant, info: MqttServiceInfo) -> None:
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_MQTT}, data=info
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "invalid_discovery_info"


async def test_mqtt_discovery_topic_must_match_id(hass: HomeAssistant, bridge: FakeBridge) -> None:
    info = discovery(bridge)
    info.topic = "doorstep/discovery/someone-else"
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_MQTT}, data=info
    )
    assert result["reason"] == "invalid_discovery_info"


async def test_mqtt_incompatible(hass: HomeAssistant, bridge: FakeBridge) -> None:
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_MQTT}, data=discovery(bridge, protocol=9)
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "incompatible_protocol"


async def _confirm(hass: HomeAssistant, info: MqttServiceInfo, url: str) -> MockConfigEntry:
    """The entry the confirm step makes with ``url`` for a discovered bridge."""
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_MQTT}, data=info
    )
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_URL: url, CONF_API_TOKEN: TOKEN}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    return result["result"]  # type: ignore[no-any-return]


async def _announce(hass: HomeAssistant, bridge: FakeBridge, **changes: Any) -> None:
    """The bridge's retained discovery message, as after each restart of HA."""
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_MQTT}, data=discovery(bridge, **changes)
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"


async def test_mqtt_updates_moved_bridge(hass: HomeAssistant, bridge: FakeBridge) -> None:
    """An entry that kept the announced URL follows the bridge to its new address."""
    entry = await _confirm(hass, discovery(bridge), bridge.url)
    assert entry.data[CONF_ANNOUNCED_URL] == bridge.url
    # The bridge moved: it listens and announces elsewhere, under another base topic.
    moved = bridge.announced_url = await bridge.listen_also()
    bridge.base_topic = "door2"
    await _announce(hass, bridge)
    assert entry.data == {
        CONF_URL: moved,
        CONF_ANNOUNCED_URL: moved,
        CONF_BASE_TOPIC: "door2",
        CONF_API_TOKEN: TOKEN,
    }
    again = bridge.announced_url = await bridge.listen_also()
    await _announce(hass, bridge)
    assert entry.data[CONF_URL] == again  # and again
    # Each new address proved the announcement before it was used; no token went there.
    proofs = [(method, path) for method, path, _ in bridge.requests]
    assert proofs == [("GET", "/api/info")] + [("POST", "/api/announcement-proof")] * 2
    assert all("Authorization" not in headers for _, _, headers in bridge.requests[1:])


async def test_mqtt_keeps_the_owners_url(hass: HomeAssistant, bridge: FakeBridge) -> None:
    """A URL typed at the confirm step survives every re-announcement."""
    announced = discovery(bridge, api_url="http://0.0.0.0:5080")
    entry = await _confirm(hass, announced, bridge.url)
    assert entry.data[CONF_URL] == bridge.url
    await _announce(hass, bridge, api_url="http://0.0.0.0:5080")  # Home Assistant restarts
    assert entry.data[CONF_URL] == bridge.url
    # A new base topic is proven by the bridge at the owner's URL, the one the entry uses.
    bridge.announced_url, bridge.base_topic = "http://10.0.0.9:5080", "door2"
    await _announce(hass, bridge)
    assert entry.data == {
        CONF_URL: bridge.url,
        CONF_ANNOUNCED_URL: "http://10.0.0.9:5080",
        CONF_BASE_TOPIC: "door2",  # the base topic always follows the bridge
        CONF_API_TOKEN: TOKEN,
    }


async def test_mqtt_keeps_a_reconfigured_url(hass: HomeAssistant, bridge: FakeBridge) -> None:
    entry = MockConfigEntry(
        domain=DOMAIN,
        unique_id=BRIDGE_ID,
        data=user_input(bridge, url="http://announced:5080", announced_url="http://announced:5080"),
    )
    entry.add_to_hass(hass)
    result = await entry.start_reconfigure_flow(hass)
    result = await hass.config_entries.flow.async_configure(result["flow_id"], user_input(bridge))
    assert result["reason"] == "reconfigure_successful"
    assert entry.data[CONF_ANNOUNCED_URL] == "http://announced:5080"  # still what was announced
    await _announce(hass, bridge, api_url="http://announced:5080")
    await _announce(hass, bridge, api_url="http://moved:5080")
    assert entry.data[CONF_URL] == bridge.url
    assert entry.data[CONF_ANNOUNCED_URL] == "http://moved:5080"


@pytest.mark.parametrize(
    ("first_announced", "follows"),
    [
        ("same", True),  # it held the announced URL (each restart used to write it back)
        ("http://0.0.0.0:5080", False),  # typed by hand, or the bridge moved meanwhile
    ],
)
async def test_mqtt_entry_without_a_stored_announcement(
    hass: HomeAssistant, bridge: FakeBridge, first_announced: str, follows: bool
) -> None:
    """Set up by hand, or before announcements were stored: its URL is never overwritten."""
    entry = MockConfigEntry(domain=DOMAIN, unique_id=BRIDGE_ID, data=user_input(bridge))
    entry.add_to_hass(hass)
    announced = bridge.url if first_announced == "same" else first_announced
    await _announce(hass, bridge, api_url=announced)
    assert entry.data[CONF_URL] == bridge.url
    assert entry.data[CONF_ANNOUNCED_URL] == announced
    moved = bridge.announced_url = await bridge.listen_also()
    await _announce(hass, bridge)
    assert entry.data[CONF_URL] == (moved if follows else bridge.url)


@pytest.mark.parametrize(
    ("change", "reloads"),
    [
        (None, False),  # the usual restart: nothing new
        ("api_url", True),
        ("base_topic", True),
    ],
)
async def test_mqtt_reloads_only_for_what_the_entry_uses(
    hass: HomeAssistant, bridge: FakeBridge, change: str | None, reloads: bool
) -> None:
    """A first stored announcement is bookkeeping; a new URL or topic needs a reload."""
    entry = MockConfigEntry(domain=DOMAIN, unique_id=BRIDGE_ID, data=user_input(bridge))
    entry.add_to_hass(hass)
    entry.mock_state(hass, ConfigEntryState.LOADED)
    with patch.object(hass.config_entries, "async_schedule_reload") as reload:
        await _announce(hass, bridge)  # stores the announcement
        assert CONF_ANNOUNCED_URL in entry.data
        reload.assert_not_called()
        if change == "api_url":
            bridge.announced_url = await bridge.listen_also()
        elif change == "base_topic":
            bridge.base_topic = "door2"
        await _announce(hass, bridge)
    assert reload.called is reloads


async def test_reauth(hass: HomeAssistant, bridge: FakeBridge) -> None:
    entry = MockConfigEntry(
        domain=DOMAIN, unique_id=BRIDGE_ID, data=user_input(bridge, api_token="old")
    )
    entry.add_to_hass(hass)
    result = await entry.start_reauth_flow(hass)
    assert result["step_id"] == "reauth_confirm"
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_API_TOKEN: "still-wrong"}
    )
    assert result["errors"] == {"base": "invalid_auth"}
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_API_TOKEN: TOKEN}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reauth_successful"
    assert entry.data[CONF_API_TOKEN] == TOKEN


async def test_reauth_wrong_bridge(hass: HomeAssistant, bridge: FakeBridge) -> None:
    entry = MockConfigEntry(domain=DOMAIN, unique_id="other", data=user_input(bridge))
    entry.add_to_hass(hass)
    result = await entry.start_reauth_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_API_TOKEN: TOKEN}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "wrong_bridge"


async def test_reconfigure(hass: HomeAssistant, bridge: FakeBridge) -> None:
    entry = MockConfigEntry(
        domain=DOMAIN, unique_id=BRIDGE_ID, data=user_input(bridge, url="http://old:1")
    )
    entry.add_to_hass(hass)
    result = await entry.start_reconfigure_flow(hass)
    assert result["step_id"] == "reconfigure"
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], user_input(bridge, api_token="nope")
    )
    assert result["errors"] == {"base": "invalid_auth"}
    assert "nope" not in _form_values(result)  # nor is a typed-in token sent back
    result = await hass.config_entries.flow.async_configure(result["flow_id"], user_input(bridge))
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    assert entry.data == user_input(bridge)


def _form_values(result: Any) -> list[Any]:
    """Every default and suggested value a form hands the browser."""
    values = []
    for marker in result["data_schema"].schema:
        values.append((marker.description or {}).get("suggested_value"))
        if callable(getattr(marker, "default", None)):
            values.append(marker.default())
    return values


async def test_reconfigure_form_never_carries_the_token(
    hass: HomeAssistant, bridge: FakeBridge, hass_client: ClientSessionGenerator
) -> None:
    """A password field only hides a value on screen: the browser still receives it."""
    entry = MockConfigEntry(domain=DOMAIN, unique_id=BRIDGE_ID, data=user_input(bridge))
    entry.add_to_hass(hass)
    result = await entry.start_reconfigure_flow(hass)
    assert TOKEN not in _form_values(result)
    assert bridge.url in _form_values(result)  # the other fields keep their values
    token = next(m for m in result["data_schema"].schema if m == CONF_API_TOKEN)
    assert isinstance(token, vol.Optional)
    # What the frontend really gets, through HA's HTTP API.
    assert await async_setup_component(hass, "config", {})
    client = await hass_client()
    response = await client.post(
        "/api/config/config_entries/flow", json={"handler": DOMAIN, "entry_id": entry.entry_id}
    )
    assert response.status == HTTPStatus.OK
    body = await response.text()
    assert json.loads(body)["step_id"] == "reconfigure"
    assert bridge.url in body
    assert TOKEN not in body


@pytest.mark.parametrize("empty", [{}, {CONF_API_TOKEN: ""}])
async def test_reconfigure_without_token_keeps_it(
    hass: HomeAssistant, bridge: FakeBridge, empty: dict[str, str]
) -> None:
    entry = MockConfigEntry(
        domain=DOMAIN, unique_id=BRIDGE_ID, data=user_input(bridge, url="http://old:1")
    )
    entry.add_to_hass(hass)
    result = await entry.start_reconfigure_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_BASE_TOPIC: BASE, CONF_URL: bridge.url, **empty}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    assert entry.data == user_input(bridge)  # the new URL, the old token
    assert bridge.requests[-1][2]["Authorization"] == f"Bearer {TOKEN}"


async def test_reconfigure_with_a_new_token(hass: HomeAssistant, bridge: FakeBridge) -> None:
    entry = MockConfigEntry(domain=DOMAIN, unique_id=BRIDGE_ID, data=user_input(bridge))
    entry.add_to_hass(hass)
    bridge.token = "rotated-token"
    result = await entry.start_reconfigure_flow(hass)
    result = await hass.config_entries.flow.async_configure(result["flow_id"], user_input(bridge))
    assert result["errors"] == {"base": "invalid_auth"}  # the stored token is now wrong
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], user_input(bridge, api_token="rotated-token")
    )
    assert result["reason"] == "reconfigure_successful"
    assert entry.data[CONF_API_TOKEN] == "rotated-token"


async def test_reconfigure_wrong_bridge(hass: HomeAssistant, bridge: FakeBridge) -> None:
    entry = MockConfigEntry(domain=DOMAIN, unique_id="other", data=user_input(bridge))
    entry.add_to_hass(hass)
    result = await entry.start_reconfigure_flow(hass)
    result = await hass.config_entries.flow.async_configure(result["flow_id"], user_input(bridge))
    assert result["reason"] == "wrong_bridge"


async def test_options(hass: HomeAssistant, bridge: FakeBridge, hass_admin_user: MockUser) -> None:
    entry = MockConfigEntry(domain=DOMAIN, unique_id=BRIDGE_ID, data=user_input(bridge))
    entry.add_to_hass(hass)
    hass.services.async_register("notify", "mobile_app_alice_phone", AsyncMock())
    hass.services.async_register("notify", "persistent", AsyncMock())
    hass.services.async_register("notify", "family_phones", AsyncMock())  # a notify group
    result = await hass.config_entries.options.async_init(entry.entry_id)
    assert result["type"] is FlowResultType.FORM
    assert result["data_schema"] is not None
    schema = result["data_schema"].schema
    approvers = next(k for k in schema if k == CONF_APPROVERS)
    phones = next(k for k in schema if k == CONF_NOTIFY_SERVICES)
    user_ids = [o["value"] for o in schema[approvers].config["options"]]
    assert hass_admin_user.id in user_ids
    assert schema[phones].config["options"] == ["notify.mobile_app_alice_phone"]
    options = {
        CONF_APPROVERS: [hass_admin_user.id],
        CONF_NOTIFY_SERVICES: ["notify.mobile_app_alice_phone", "family_phones"],
        CONF_LINK_TTL_HOURS: 12,
        CONF_NOTIFICATION_DETAIL: "cameras",
        CONF_OFFER_UNREDACTED: True,
    }
    result = await hass.config_entries.options.async_configure(result["flow_id"], options)
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert entry.options == {
        **options,
        CONF_NOTIFY_SERVICES: ["notify.mobile_app_alice_phone", "notify.family_phones"],
    }


async def test_options_refuse_a_phone_home_assistant_does_not_know(
    hass: HomeAssistant, bridge: FakeBridge, hass_admin_user: MockUser
) -> None:
    # A slip in a typed-in name was saved, and approval prompts then reached nobody.
    entry = MockConfigEntry(domain=DOMAIN, unique_id=BRIDGE_ID, data=user_input(bridge))
    entry.add_to_hass(hass)
    hass.services.async_register("notify", "mobile_app_alice_phone", AsyncMock())
    result = await hass.config_entries.options.async_init(entry.entry_id)
    options = {
        CONF_APPROVERS: [hass_admin_user.id],
        CONF_NOTIFY_SERVICES: ["notify.mobile_app_alice_phone", "mobile_app_alice_phnoe"],
        CONF_LINK_TTL_HOURS: 12,
        CONF_NOTIFICATION_DETAIL: "cameras",
        CONF_OFFER_UNREDACTED: False,
    }
    result = await hass.config_entries.options.async_configure(result["flow_id"], options)
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {CONF_NOTIFY_SERVICES: "unknown_notify_service"}
    assert result["description_placeholders"] == {"services": "notify.mobile_app_alice_phnoe"}
    assert entry.options == {}
    texts = await translation.async_get_translations(hass, "en", "options", [DOMAIN])
    message = texts[f"component.{DOMAIN}.options.error.unknown_notify_service"]
    assert message.format(**result["description_placeholders"]).startswith(
        "No notify action notify.mobile_app_alice_phnoe in Home Assistant"
    )
    # Corrected, it is saved.
    options[CONF_NOTIFY_SERVICES] = ["notify.mobile_app_alice_phone"]
    result = await hass.config_entries.options.async_configure(result["flow_id"], options)
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert entry.options[CONF_NOTIFY_SERVICES] == ["notify.mobile_app_alice_phone"]


async def test_mqtt_confirm_after_manual_setup(hass: HomeAssistant, bridge: FakeBridge) -> None:
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_MQTT}, data=discovery(bridge)
    )
    MockConfigEntry(domain=DOMAIN, unique_id=BRIDGE_ID, data=user_input(bridge)).add_to_hass(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_URL: bridge.url, CONF_API_TOKEN: TOKEN}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"


async def test_manual_flow_while_discovered_one_waits(
    hass: HomeAssistant, bridge: FakeBridge
) -> None:
    discovered = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_MQTT}, data=discovery(bridge)
    )
    assert discovered["step_id"] == "confirm"
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    result = await hass.config_entries.flow.async_configure(result["flow_id"], user_input(bridge))
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_in_progress"
    # The user reads a sentence, not the raw key.
    texts = await translation.async_get_translations(hass, "en", "config", [DOMAIN])
    assert texts[f"component.{DOMAIN}.config.abort.already_in_progress"] == (
        "Configuration flow is already in progress"
    )


# Two bridges under one base topic ------------------------------------------------------

OTHER_ID = "0a1b2c3d4e5f6a7b"


def _garden(base_topic: str = BASE) -> MockConfigEntry:
    """Another bridge's entry, on ``base_topic``."""
    return MockConfigEntry(
        domain=DOMAIN, unique_id=OTHER_ID, title="Garden",
        data={CONF_BASE_TOPIC: base_topic, CONF_URL: "http://garden:5080", CONF_API_TOKEN: TOKEN},
    )  # fmt: skip


async def test_user_refuses_a_base_topic_in_use(hass: HomeAssistant, bridge: FakeBridge) -> None:
    _garden().add_to_hass(hass)
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    result = await hass.config_entries.flow.async_configure(result["flow_id"], user_input(bridge))
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {CONF_BASE_TOPIC: "base_topic_in_use"}
    assert result["description_placeholders"] == {"entry": "Garden"}
    assert len(hass.config_entries.async_entries(DOMAIN)) == 1
    # Once the bridge has a base topic of its own, it is added.
    bridge.base_topic = "porch"
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], user_input(bridge, base_topic="porch")
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY


async def test_mqtt_refuses_a_base_topic_in_use(hass: HomeAssistant, bridge: FakeBridge) -> None:
    _garden().add_to_hass(hass)
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_MQTT}, data=discovery(bridge)
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "base_topic_in_use"
    assert result["description_placeholders"] == {"name": "Doorstep", "entry": "Garden"}


async def test_mqtt_confirm_refuses_a_base_topic_taken_meanwhile(
    hass: HomeAssistant, bridge: FakeBridge
) -> None:
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_MQTT}, data=discovery(bridge)
    )
    assert result["step_id"] == "confirm"
    _garden().add_to_hass(hass)  # set up by hand while the form was open
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_URL: bridge.url, CONF_API_TOKEN: TOKEN}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "base_topic_in_use"


async def test_reconfigure_refuses_a_base_topic_in_use(
    hass: HomeAssistant, bridge: FakeBridge
) -> None:
    _garden().add_to_hass(hass)
    entry = MockConfigEntry(
        domain=DOMAIN, unique_id=BRIDGE_ID, data=user_input(bridge, base_topic="porch")
    )
    entry.add_to_hass(hass)
    result = await entry.start_reconfigure_flow(hass)
    # The bridge was moved onto the garden bridge's base topic.
    result = await hass.config_entries.flow.async_configure(result["flow_id"], user_input(bridge))
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {CONF_BASE_TOPIC: "base_topic_in_use"}
    assert result["description_placeholders"] == {"entry": "Garden"}
    assert entry.data[CONF_BASE_TOPIC] == "porch"


async def test_base_topic_in_use_is_translated(hass: HomeAssistant) -> None:
    for language in ("en", "fr"):
        strings = await translation.async_get_translations(hass, language, "config", [DOMAIN])
        for kind in ("error", "abort"):
            text = strings[f"component.{DOMAIN}.config.{kind}.base_topic_in_use"]
            assert "{entry}" in text

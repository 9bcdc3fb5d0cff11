"""Set up a bridge: found on MQTT (confirm + token) or entered by hand."""

from __future__ import annotations

from collections.abc import Mapping
import hmac
import secrets
from typing import Any

from homeassistant.config_entries import ConfigEntry, ConfigFlow, ConfigFlowResult
from homeassistant.const import CONF_API_TOKEN, CONF_URL
from homeassistant.core import callback
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.helpers.selector import (
    BooleanSelector,
    NumberSelector,
    NumberSelectorConfig,
    NumberSelectorMode,
    SelectOptionDict,
    SelectSelector,
    SelectSelectorConfig,
    SelectSelectorMode,
    TextSelector,
    TextSelectorConfig,
    TextSelectorType,
)
from homeassistant.helpers.service_info.mqtt import MqttServiceInfo
import voluptuous as vol

from .api import (
    BridgeSnapshot,
    DoorstepApiClient,
    DoorstepAuthError,
    DoorstepError,
    DoorstepNotFoundError,
    announcement_proof,
    ask_announcement_proof,
)
from .compat import OptionsFlowBase
from .const import (
    CONF_ANNOUNCED_URL,
    CONF_APPROVERS,
    CONF_BASE_TOPIC,
    CONF_LINK_TTL_HOURS,
    CONF_NOTIFICATION_DETAIL,
    CONF_NOTIFICATION_TITLE,
    CONF_NOTIFY_SERVICES,
    CONF_OFFER_UNREDACTED,
    DEFAULT_BASE_TOPIC,
    DEFAULT_LINK_TTL_HOURS,
    DEFAULT_NOTIFICATION_DETAIL,
    DOMAIN,
    ISSUE_ANNOUNCEMENT_NOT_PROVEN,
    LOGGER,
    NOTIFICATION_DETAILS,
)
from .data import DoorstepConfigEntry
from .protocol import DISCOVERY_PREFIX, BridgeInfo, ProtocolError, parse_bridge_info

PASSWORD = TextSelector(TextSelectorConfig(type=TextSelectorType.PASSWORD))
URL = TextSelector(TextSelectorConfig(type=TextSelectorType.URL))
TEXT = TextSelector()


class ConnectError(Exception):
    """A connection test failed; ``key`` is the translated form error."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _rediscovery_updates(data: Mapping[str, Any], info: BridgeInfo) -> dict[str, Any]:
    """What a configured bridge's announcement changes in its entry.

    The base topic always follows the bridge. The URL follows it only while the entry
    holds the URL the bridge announced last time: a URL the owner typed (at the confirm
    step, by hand, or with Reconfigure, for a Home Assistant that reaches the bridge
    another way) is theirs to keep, or every restart would undo it. An entry without a
    stored announcement (set up by hand, or before announcements were stored) cannot
    tell a typed URL from an announced one, so its URL is kept too; once the
    announcement is stored, an entry whose URL is that one follows the bridge's moves.
    Entries from before held the announced URL (each restart wrote it back), so they
    follow from their first announcement on, unless the bridge moved at that very time.
    A new URL or base topic is applied only once the bridge proves the announcement.
    """
    updates: dict[str, Any] = {CONF_BASE_TOPIC: info.base_topic, CONF_ANNOUNCED_URL: info.api_url}
    announced = data.get(CONF_ANNOUNCED_URL)
    if announced is not None and data.get(CONF_URL) == announced:
        updates[CONF_URL] = info.api_url
    return updates


def _issue_id(entry: ConfigEntry) -> str:
    """The entry's "announcement not proven" issue (ends with the bridge id, as all do)."""
    return f"{ISSUE_ANNOUNCEMENT_NOT_PROVEN}_{entry.unique_id}"


class DoorstepConfigFlow(ConfigFlow, domain=DOMAIN):
    """Config flow of a Doorstep bridge."""

    VERSION = 1

    def __init__(self) -> None:
        self._discovered: BridgeInfo | None = None

    @staticmethod
    @callback
    def async_get_options_flow(
        config_entry: DoorstepConfigEntry,  # noqa: ARG004
    ) -> DoorstepOptionsFlow:
        """Approvers, phones, link lifetime, notification wording."""
        return DoorstepOptionsFlow()

    async def _async_test(self, url: str, token: str, base_topic: str) -> BridgeSnapshot:
        client = DoorstepApiClient(async_get_clientsession(self.hass), url, token)
        try:
            snapshot = await client.info()
        except DoorstepAuthError as err:
            raise ConnectError("invalid_auth") from err
        except DoorstepError as err:
            raise ConnectError("cannot_connect") from err
        except Exception as err:
            LOGGER.exception("Unexpected error testing the bridge")
            raise ConnectError("unknown") from err
        if not snapshot.info.compatible:
            raise ConnectError("incompatible_protocol")
        if snapshot.info.base_topic != base_topic:
            raise ConnectError("base_topic_mismatch")
        return snapshot

    def _topic_taken(self, base_topic: str, bridge_id: str) -> ConfigEntry | None:
        """Another Doorstep entry whose bridge publishes under ``base_topic``.

        Two bridges under one base topic mix their messages: motion at one turns on the
        other's sensors, and a share request of one prompts every approver twice.
        """
        for entry in self._async_current_entries(include_ignore=False):
            if entry.unique_id != bridge_id and entry.data.get(CONF_BASE_TOPIC) == base_topic:
                return entry
        return None

    # Manual ------------------------------------------------------------------

    async def async_step_user(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Base topic, bridge URL and API token."""
        errors: dict[str, str] = {}
        placeholders: dict[str, str] = {}
        if user_input is not None:
            try:
                snapshot = await self._async_test(
                    user_input[CONF_URL], user_input[CONF_API_TOKEN], user_input[CONF_BASE_TOPIC]
                )
            except ConnectError as err:
                errors["base"] = err.key
            else:
                await self.async_set_unique_id(snapshot.info.id)
                self._abort_if_unique_id_configured()
                if other := self._topic_taken(user_input[CONF_BASE_TOPIC], snapshot.info.id):
                    errors[CONF_BASE_TOPIC] = "base_topic_in_use"
                    placeholders["entry"] = other.title
                else:
                    return self.async_create_entry(title=snapshot.info.name, data=user_input)
        return self.async_show_form(
            step_id="user",
            data_schema=self.add_suggested_values_to_schema(
                vol.Schema(
                    {
                        vol.Required(CONF_BASE_TOPIC, default=DEFAULT_BASE_TOPIC): TEXT,
                        vol.Required(CONF_URL): URL,
                        vol.Required(CONF_API_TOKEN): PASSWORD,
                    }
                ),
                user_input,
            ),
            errors=errors,
            description_placeholders=placeholders,
        )

    # MQTT discovery ------------------------------------------------------------

    async def async_step_mqtt(self, discovery_info: MqttServiceInfo) -> ConfigFlowResult:
        """The bridge's retained ``doorstep/discovery/<id>`` message."""
        if not discovery_info.topic.startswith(f"{DISCOVERY_PREFIX}/"):
            return self.async_abort(reason="invalid_discovery_info")
        try:
            info = parse_bridge_info(discovery_info.payload)
        except ProtocolError:
            return self.async_abort(reason="invalid_discovery_info")
        if discovery_info.topic != f"{DISCOVERY_PREFIX}/{info.id}":
            return self.async_abort(reason="invalid_discovery_info")
        if entry := await self.async_set_unique_id(info.id):
            # A moved bridge updates its entry (discovery-update-info); the message is
            # retained, so this runs again after every restart of Home Assistant.
            updates = _rediscovery_updates(entry.data, info)
            # The announced URL alone is bookkeeping: the running entry does not use it.
            moves = any(
                entry.data.get(key) != value
                for key, value in updates.items()
                if key != CONF_ANNOUNCED_URL
            )
            if moves and CONF_API_TOKEN in entry.data:
                # Anyone on the broker can publish this message: the entry would send
                # its token to any address it names. Follow only a proven announcement.
                url = updates.get(CONF_URL, entry.data[CONF_URL])
                if not await self._async_announcement_proven(entry, info, url):
                    self._abort_if_unique_id_configured()  # the entry stays as it is
            ir.async_delete_issue(self.hass, DOMAIN, _issue_id(entry))
            self._abort_if_unique_id_configured(updates=updates, reload_on_update=moves)
        if not info.compatible:
            return self.async_abort(reason="incompatible_protocol")
        if other := self._topic_taken(info.base_topic, info.id):
            return self.async_abort(
                reason="base_topic_in_use",
                description_placeholders={"name": info.name, "entry": other.title},
            )
        self._discovered = info
        self.context["title_placeholders"] = {"name": info.name}
        return await self.async_step_confirm()

    async def _async_announcement_proven(
        self, entry: ConfigEntry, info: BridgeInfo, url: str
    ) -> bool:
        """Whether the bridge at ``url`` proves it announced ``info``, with the entry's token.

        ``url`` is the address the entry would use from now on: the announced one when
        the entry follows the bridge's moves, else the owner's own (only the base topic
        would change). The proof covers the announced address and base topic, so an
        address that relays the challenge to the real bridge gets a proof of the real
        announcement, which does not match a forged one. Not proven: a warning (once
        per announcement) and a repair issue.
        """
        nonce = secrets.token_urlsafe(24)
        expected = announcement_proof(
            entry.data[CONF_API_TOKEN], info.api_url, info.base_topic, nonce
        )
        try:
            proof = await ask_announcement_proof(async_get_clientsession(self.hass), url, nonce)
        except DoorstepError as err:
            why = (
                "it has no such endpoint (an older bridge?)"
                if isinstance(err, DoorstepNotFoundError)
                else str(err)
            )
        else:
            if hmac.compare_digest(proof.encode(), expected.encode()):
                return True
            why = "its proof is wrong"
        placeholders = {"name": entry.title, "url": info.api_url, "base_topic": info.base_topic}
        issue_id = _issue_id(entry)
        known = ir.async_get(self.hass).async_get_issue(DOMAIN, issue_id)
        if known is None or not known.active or known.translation_placeholders != placeholders:
            LOGGER.warning(
                "Doorstep bridge %s (%s) was announced on MQTT at %s with base topic %s, "
                "but %s could not prove it holds the bridge's API token (%s): keeping %s "
                "and base topic %s. If the bridge moved, use Reconfigure on its entry",
                entry.title, entry.unique_id, info.api_url, info.base_topic, url, why,
                entry.data.get(CONF_URL), entry.data.get(CONF_BASE_TOPIC),
            )  # fmt: skip
        ir.async_create_issue(
            self.hass,
            DOMAIN,
            issue_id,
            is_fixable=False,
            severity=ir.IssueSeverity.WARNING,
            translation_key=ISSUE_ANNOUNCEMENT_NOT_PROVEN,
            translation_placeholders=placeholders,
        )
        return False

    async def async_step_confirm(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Confirm the discovered bridge; the token is never published, so ask for it."""
        info = self._discovered
        assert info is not None
        errors: dict[str, str] = {}
        placeholders = {"name": info.name, "cameras": str(len(info.cameras))}
        if user_input is not None:
            data = {
                CONF_BASE_TOPIC: info.base_topic,
                CONF_URL: user_input[CONF_URL],
                CONF_API_TOKEN: user_input[CONF_API_TOKEN],
                # Whether the URL above is the announced one or the owner's own.
                CONF_ANNOUNCED_URL: info.api_url,
            }
            try:
                await self._async_test(data[CONF_URL], data[CONF_API_TOKEN], info.base_topic)
            except ConnectError as err:
                errors["base"] = err.key
            else:
                # Set up by hand meanwhile? Then there is nothing to add.
                self._abort_if_unique_id_configured()
                # Another bridge set up on its base topic meanwhile?
                if other := self._topic_taken(info.base_topic, info.id):
                    return self.async_abort(
                        reason="base_topic_in_use",
                        description_placeholders={"name": info.name, "entry": other.title},
                    )
                return self.async_create_entry(title=info.name, data=data)
        return self.async_show_form(
            step_id="confirm",
            data_schema=vol.Schema(
                {
                    vol.Required(CONF_URL, default=info.api_url): URL,
                    vol.Required(CONF_API_TOKEN): PASSWORD,
                }
            ),
            description_placeholders=placeholders,
            errors=errors,
        )

    # Reauth ------------------------------------------------------------------

    async def async_step_reauth(
        self,
        entry_data: Mapping[str, Any],  # noqa: ARG002
    ) -> ConfigFlowResult:
        """The bridge rejected the token."""
        return await self.async_step_reauth_confirm()

    async def async_step_reauth_confirm(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Ask for a new token."""
        entry = self._get_reauth_entry()
        errors: dict[str, str] = {}
        if user_input is not None:
            try:
                snapshot = await self._async_test(
                    entry.data[CONF_URL], user_input[CONF_API_TOKEN], entry.data[CONF_BASE_TOPIC]
                )
            except ConnectError as err:
                errors["base"] = err.key
            else:
                await self.async_set_unique_id(snapshot.info.id)
                self._abort_if_unique_id_mismatch(reason="wrong_bridge")
                return self.async_update_reload_and_abort(
                    entry, data_updates={CONF_API_TOKEN: user_input[CONF_API_TOKEN]}
                )
        return self.async_show_form(
            step_id="reauth_confirm",
            data_schema=vol.Schema({vol.Required(CONF_API_TOKEN): PASSWORD}),
            description_placeholders={"name": entry.title},
            errors=errors,
        )

    # Reconfigure -------------------------------------------------------------

    async def async_step_reconfigure(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Change the URL, token or base topic of a configured bridge.

        The stored token never goes into the form (a password field only hides it
        on screen, the browser still receives it): the field starts empty, and
        left empty it keeps the current token.
        """
        entry = self._get_reconfigure_entry()
        errors: dict[str, str] = {}
        placeholders: dict[str, str] = {}
        if user_input is not None:
            data = {
                CONF_BASE_TOPIC: user_input[CONF_BASE_TOPIC],
                CONF_URL: user_input[CONF_URL],
                CONF_API_TOKEN: user_input.get(CONF_API_TOKEN) or entry.data[CONF_API_TOKEN],
            }
            try:
                snapshot = await self._async_test(
                    data[CONF_URL], data[CONF_API_TOKEN], data[CONF_BASE_TOPIC]
                )
            except ConnectError as err:
                errors["base"] = err.key
            else:
                await self.async_set_unique_id(snapshot.info.id)
                self._abort_if_unique_id_mismatch(reason="wrong_bridge")
                if other := self._topic_taken(data[CONF_BASE_TOPIC], snapshot.info.id):
                    errors[CONF_BASE_TOPIC] = "base_topic_in_use"
                    placeholders["entry"] = other.title
                else:
                    return self.async_update_reload_and_abort(entry, data_updates=data)
        suggested = {
            key: value for key, value in (user_input or entry.data).items() if key != CONF_API_TOKEN
        }
        return self.async_show_form(
            step_id="reconfigure",
            data_schema=self.add_suggested_values_to_schema(
                vol.Schema(
                    {
                        vol.Required(CONF_BASE_TOPIC): TEXT,
                        vol.Required(CONF_URL): URL,
                        vol.Optional(CONF_API_TOKEN): PASSWORD,
                    }
                ),
                suggested,
            ),
            errors=errors,
            description_placeholders=placeholders,
        )


class DoorstepOptionsFlow(OptionsFlowBase):
    """Who approves shares, on which phones, and what the notification says."""

    async def async_step_init(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """One form."""
        errors: dict[str, str] = {}
        placeholders: dict[str, str] = {}
        if user_input is not None:
            # Typed-in phones may omit the domain: "mobile_app_x" means notify.mobile_app_x.
            user_input[CONF_NOTIFY_SERVICES] = [
                name if name.startswith("notify.") else f"notify.{name}"
                for name in user_input.get(CONF_NOTIFY_SERVICES, [])
            ]
            # A phone typed with a slip would be saved, and approvals would then never
            # reach anyone: the notify action must exist (a phone, a group, ...).
            unknown = [
                name
                for name in user_input[CONF_NOTIFY_SERVICES]
                if not self.hass.services.has_service("notify", name.removeprefix("notify."))
            ]
            if not unknown:
                return self.async_create_entry(data=user_input)
            errors[CONF_NOTIFY_SERVICES] = "unknown_notify_service"
            placeholders["services"] = ", ".join(unknown)
        users = [
            SelectOptionDict(value=user.id, label=user.name or user.id)
            for user in await self.hass.auth.async_get_users()
            if not user.system_generated and user.is_active
        ]
        phones = sorted(
            f"notify.{name}"
            for name in self.hass.services.async_services_for_domain("notify")
            if name.startswith("mobile_app_")
        )
        options = self.config_entry.options
        schema = vol.Schema(
            {
                vol.Optional(CONF_APPROVERS, default=[]): SelectSelector(
                    SelectSelectorConfig(options=users, multiple=True)
                ),
                vol.Optional(CONF_NOTIFY_SERVICES, default=[]): SelectSelector(
                    SelectSelectorConfig(options=phones, multiple=True, custom_value=True)
                ),
                vol.Required(CONF_LINK_TTL_HOURS, default=DEFAULT_LINK_TTL_HOURS): NumberSelector(
                    NumberSelectorConfig(
                        min=0.5,
                        max=720,
                        step=0.5,
                        mode=NumberSelectorMode.BOX,
                        unit_of_measurement="h",
                    )
                ),
                vol.Required(
                    CONF_NOTIFICATION_DETAIL, default=DEFAULT_NOTIFICATION_DETAIL
                ): SelectSelector(
                    SelectSelectorConfig(
                        options=list(NOTIFICATION_DETAILS),
                        mode=SelectSelectorMode.LIST,
                        translation_key=CONF_NOTIFICATION_DETAIL,
                    )
                ),
                vol.Optional(CONF_NOTIFICATION_TITLE): TEXT,
                vol.Required(CONF_OFFER_UNREDACTED, default=False): BooleanSelector(),
            }
        )
        return self.async_show_form(
            step_id="init",
            data_schema=self.add_suggested_values_to_schema(schema, user_input or options),
            errors=errors,
            description_placeholders=placeholders,
        )

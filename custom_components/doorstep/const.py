"""Constants of the Doorstep integration."""

from __future__ import annotations

import logging
from typing import Final

DOMAIN: Final = "doorstep"
LOGGER = logging.getLogger(__package__)

CONF_BASE_TOPIC: Final = "base_topic"
CONF_BRIDGE_ID: Final = "bridge_id"
#: The API URL the bridge last announced in its discovery message (absent: never heard,
#: e.g. an entry set up by hand): tells an announced entry URL from one the owner typed.
CONF_ANNOUNCED_URL: Final = "announced_url"
# Connection data uses HA's own CONF_URL and CONF_API_TOKEN.

# Options (tunables, not connection data).
CONF_APPROVERS: Final = "approvers"
CONF_NOTIFY_SERVICES: Final = "notify_services"
CONF_LINK_TTL_HOURS: Final = "link_ttl_hours"
CONF_NOTIFICATION_DETAIL: Final = "notification_detail"
CONF_OFFER_UNREDACTED: Final = "offer_unredacted"
CONF_NOTIFICATION_TITLE: Final = "notification_title"

DEFAULT_BASE_TOPIC: Final = "doorstep"
DEFAULT_LINK_TTL_HOURS: Final = 24.0
#: How much a phone notification may say (it travels through HA's push relay).
NOTIFICATION_DETAILS: Final = ("minimal", "cameras", "full")
DEFAULT_NOTIFICATION_DETAIL: Final = "minimal"

#: A bridge offline for this long raises a repair issue; one whose availability has not
#: arrived on MQTT this long after setup counts as offline, with its own repair issue.
UNREACHABLE_ISSUE_DELAY: Final = 300.0

# HA bus events (documented in docs/automations.md).
EVENT_SHARE_REQUESTED: Final = "doorstep_share_requested"
EVENT_SHARE_UPDATED: Final = "doorstep_share_updated"
EVENT_DECISION_REJECTED: Final = "doorstep_share_decision_rejected"
#: One happening at a camera (its ``type`` is a device trigger type), per camera device.
EVENT_CAMERA: Final = "doorstep_event"

# Actionable notification action ids: PREFIX + verb + "_" + nonce.
ACTION_PREFIX: Final = "DOORSTEP_"
ACTION_APPROVE: Final = "APPROVE"
ACTION_APPROVE_UNREDACTED: Final = "APPROVEFULL"
ACTION_DENY: Final = "DENY"

ISSUE_UNREACHABLE: Final = "bridge_unreachable"
#: The bridge answered over HTTP, but its availability never arrived on MQTT after setup.
ISSUE_NOT_HEARD: Final = "bridge_not_heard"
ISSUE_PROTOCOL: Final = "incompatible_protocol"
#: Another bridge publishes under this bridge's base topic: their messages mix.
ISSUE_TOPIC_SHARED: Final = "base_topic_shared"
#: A discovery message moved the bridge, but its address could not prove it holds the token.
ISSUE_ANNOUNCEMENT_NOT_PROVEN: Final = "announcement_not_proven"
#: The bridge's egress guard refused a connection (what tried to reach where).
ISSUE_EGRESS: Final = "egress_blocked"
#: Recording fails or is at risk on a camera (a full disk), per camera.
ISSUE_RECORDING: Final = "recording_problem"
ISSUE_MASKS: Final = "privacy_masks_misplaced"
#: A camera down, per camera; its translation key is ``camera_<status>``.
ISSUE_CAMERA_DOWN: Final = "camera_down"
#: A camera down for this long (refused, unreachable, no video...) raises a repair issue.
CAMERA_ISSUE_DELAY: Final = 300.0
#: Statuses that never heal by themselves (a wrong password or path): an issue at once.
CAMERA_SETUP_PROBLEMS: Final = frozenset({"auth_failed", "not_found"})

# Services.
SERVICE_REQUEST_SHARE: Final = "request_share"
SERVICE_APPROVE_SHARE: Final = "approve_share"
SERVICE_DENY_SHARE: Final = "deny_share"
SERVICE_REVOKE_SHARE: Final = "revoke_share"
SERVICE_FORGET_CLIP: Final = "forget_clip"

# HTTP views (HA side).
CLIP_URL: Final = "/api/doorstep/clips/{bridge_id}/{clip_id}/{kind}"
SHARE_URL: Final = "/api/doorstep/share/{bridge_id}/{token}"

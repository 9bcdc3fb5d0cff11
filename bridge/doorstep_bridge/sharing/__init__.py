"""Consent-gated sharing: requests, decisions, redacted exports, links and the audit log."""

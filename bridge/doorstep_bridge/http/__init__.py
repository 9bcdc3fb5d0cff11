"""The bridge's HTTP API (aiohttp)."""

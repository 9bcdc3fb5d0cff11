"""Contract tests between the bridge and the integration (run without the HA plugin)."""

"""Tests of the Home Assistant integration (run with the HA pytest plugin)."""

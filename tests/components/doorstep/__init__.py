"""Tests of custom_components/doorstep."""

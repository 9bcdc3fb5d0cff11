"""Custom integrations shipped by this repository (a package so tests can import them)."""

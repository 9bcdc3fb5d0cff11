"""Recording: pre-roll packet buffer, clip writer, clip store (SQLite index) and retention."""

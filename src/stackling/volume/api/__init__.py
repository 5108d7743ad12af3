"""The Block Storage v3 HTTP API."""

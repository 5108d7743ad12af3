"""The Glance v2 HTTP API (thin routes over the service)."""

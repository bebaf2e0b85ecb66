"""livesrv: a live-stream gifting realtime server."""

__version__ = "0.1.0"

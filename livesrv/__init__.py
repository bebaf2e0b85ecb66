"""livesrv: a live-stream gifting realtime server."""

__version__ = "0.2.0"

"""The wire: frame codecs, the op schema and tokens (no I/O)."""

"""The WebSocket side: the node, one session pump per connection, the hub that fans
room events out."""

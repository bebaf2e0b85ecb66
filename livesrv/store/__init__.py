"""The store boundary: the only package that speaks RESP.

Everything that talks to Redis / Valkey lives here, as centrifuge keeps its broker behind
one interface:

- :mod:`.facade`: :class:`~.facade.Backend`, what every service holds (settings,
  catalogue, script calls, commands) and the one place store failures become protocol
  errors (``unavailable``);
- :mod:`.keys`: every key and channel name, each script's keys in one hash slot;
- :mod:`.scripts` and ``lua/*.lua``: the atomic single-slot steps that move money;
- :mod:`.pipeline`: the auto-pipelined connection the scripts run on;
- :mod:`.topology` and :mod:`.cluster`: standalone or cluster, which master owns which
  slot, script calls routed by slot (MOVED / ASK / TRYAGAIN handled) and the cluster
  command client;
- :mod:`.pubsub`: the raw pub/sub feed of the hub;
- :mod:`.embedded`: where the store comes from (a private embedded server, or a URL);
- :mod:`.local_cluster`: a local Valkey Cluster from the same binary (development, tests).
"""

"""livesrv benchmark harness: one command, its own servers, its own load processes.

Usage::

    python -m loadtests.bench            # full run (about 10 minutes on 2 cores)
    python -m loadtests.bench --quick    # about a minute, small sizes (used by the tests)
    python -m loadtests.bench --help

It starts ``livesrv serve`` (port 0, its own store in a temporary data dir) and the naive
baseline server (``loadtests/naive_server.py``), then load processes
(:mod:`loadtests.loadworker`) that hold the connections. It measures, in one run:

- gift throughput and reply latency (p50/p99) against concurrency, beside the ceiling:
  the same gift scripts driven straight at the same store with pipelining;
- settlement lag (gift acknowledged -> creator's ``wallet`` event with the new diamonds)
  at the peak gift rate;
- fan-out: one room with N viewers at a fixed gift rate, events delivered per second and
  event latency (now - event ``ts``), livesrv beside the naive baseline;
- slow consumers: 5% of the viewers never read; server memory, the others' latency, and
  how the slow ones are cut (close code 4409);
- RSS per idle connection at 10k and 20k connections;
- joins (``--only joins``, not in ``--quick``): 5,000 connect + hello + join into one room,
  200 in flight, against livesrv, the naive server and Socket.IO, and a storm of 20,000
  ``join since`` at once (written to ``bench-joins.json``).

``--cluster`` and ``--durability`` run the multi-node scenarios instead.

Results: ``loadtests/results/bench.json`` and PNG plots beside it; with ``--quick``,
``bench-quick.json`` and its plots in ``loadtests/results/quick/`` (ignored by git); ``--out
DIR`` writes them elsewhere. The last line printed names the directory and the files.
The process exits 1 when any request failed or any event was not delivered.

The modules, from the command line down:

- :mod:`.cli`: the command line; picks the suite, the cluster or the durability run.
- :mod:`.suite`: the single-server run, every scenario in turn, and its result.
- scenarios: :mod:`.gifts` (throughput, latency, settlement), :mod:`.ceiling` (the store's
  own ceiling), :mod:`.fanout` (one room, many viewers), :mod:`.slow` (slow consumers),
  :mod:`.connections` (idle connections), :mod:`.joins` (join and reconnect storms),
  :mod:`.cluster` (3 nodes on a cluster beside 3 on one store), :mod:`.durability`
  (master vs replicas).
- :mod:`.pool`: the load worker processes and the admin-API chores (tokens, coins).
- :mod:`.stores`: the stores the multi-node runs start (one plain server, or a local
  cluster).
- :mod:`.sampling`: CPU, RSS and machine-busy sampling, waiting for a quiet machine.
- :mod:`.stats`: percentiles and latency arrays.
- :mod:`.results`: the summary and the files written.
- :mod:`.config`: the bench server's settings, the plan (sizes) and the run's options.
"""

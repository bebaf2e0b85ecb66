"""Load-generating worker processes: many protocol clients per process, driven by the bench.

The parent (:mod:`loadtests.bench.pool`) starts several of these with ``multiprocessing``
and talks to each over a pipe: one command at a time (a dict ``{"cmd": NAME, "args":
{...}}``), one result back. Each worker runs one event loop (uvloop when installed)
holding thousands of connections made with :mod:`loadtests.wsclient`.

Hot paths are kept cheap on purpose:
- requests are pre-encoded frames (a bytes template filled with ``%``);
- most viewers do not decode events at all: they count gift events with ``bytes.count``
  on the raw frame; one viewer in ``sample_every`` decodes every frame to record event
  latency (now - ``ts``) and check that ``seq`` has no gap.

The modules: :mod:`.client` (one protocol session), :mod:`.worker` (the process and its
command loop), and the commands by concern: :mod:`.admin` (tokens, coins), :mod:`.creators`,
:mod:`.viewers`, :mod:`.gifters`, :mod:`.store_load` (the store's ceiling).
"""

from .worker import raise_nofile, worker_main

__all__ = ["raise_nofile", "worker_main"]

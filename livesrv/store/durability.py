"""When a money reply may be sent: the durability policy (docs/design.md, "Durability").

Replication is asynchronous: a write a master applied can be lost with it if the master dies
before a replica has it. The policy says what livesrv waits for before it answers ``ok``:

- ``master``: the master applied the step (nothing more).
- ``replicas``: ``durability_replicas`` replicas hold it (``WAIT n timeout``).
- ``aof``: the master's append-only file is fsynced (``WAITAOF 1 0 timeout``).
- ``replicas+aof``: both (``WAITAOF 1 n timeout``).
- ``auto`` (the default): ``replicas`` when every master has a replica at start, else
  ``master``; and a master that has no replica connected at all (its replica died, or it
  is the replica promoted after its master died) is not waited for until one is connected
  again: there is no copy to wait for, and refusing would stop that master's money steps
  until an operator adds a replica. ``replicas`` (chosen explicitly) is strict: without
  the replicas, steps are ``unavailable``.

With auto-pipelining, one wait per master per batch of script calls covers the whole batch:
the batch ends with a small write (so the wait also covers whatever other connections wrote
before the scripts read it) and then the wait. A step whose wait falls short is answered
``unavailable``: it did run, the client's retry with the same key finds it done and waits
again, so it is acknowledged only once a replica holds it.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

import redis

from .topology import parse_redirect

log = logging.getLogger(__name__)

POLICIES = ("auto", "master", "replicas", "aof", "replicas+aof")
SYNC_TTL_MS = 60_000  # the per-tag marker the batch barrier writes lives this long


@dataclass(frozen=True)
class Durability:
    """A resolved policy: what a batch of script calls waits for before its replies.

    Attributes:
        name: ``master``, ``replicas``, ``aof`` or ``replicas+aof``.
        replicas: Replicas that must acknowledge (0 for ``master`` and ``aof``).
        aof: Whether the master's AOF must be fsynced.
        timeout_ms: How long to wait before the batch is answered ``unavailable``.
        strict: Whether a master with fewer replicas connected than ``replicas`` answers
            ``unavailable`` (else it is not waited for until enough are connected: ``auto``).
    """

    name: str = "master"
    replicas: int = 0
    aof: bool = False
    timeout_ms: int = 1000
    strict: bool = True

    @classmethod
    def choose(
        cls, policy: str, replicas: int, timeout_ms: int, replicas_per_master: int
    ) -> Durability:
        """Resolve a configured policy against the store found at start-up.

        Args:
            policy: One of :data:`POLICIES`.
            replicas: The configured replica count to wait for (``replicas`` policies).
            timeout_ms: The configured wait timeout.
            replicas_per_master: The fewest replicas any master has now.

        Raises:
            ValueError: An unknown policy or a replica count below 1 for a replica policy.
        """
        if policy not in POLICIES:
            raise ValueError(f"durability must be one of {', '.join(POLICIES)}, not {policy!r}")
        if policy == "auto":
            if replicas_per_master < 1:
                return cls("master", 0, False, timeout_ms)
            n = min(max(replicas, 1), replicas_per_master)
            return cls("replicas", n, False, timeout_ms, strict=False)
        if policy in ("replicas", "replicas+aof") and replicas < 1:
            raise ValueError(f"durability {policy} needs durability_replicas >= 1")
        if policy in ("replicas", "replicas+aof") and replicas > replicas_per_master:
            log.warning(
                "durability %s waits for %d replicas but a master has %d: its money steps "
                "answer unavailable until it has enough",
                policy,
                replicas,
                replicas_per_master,
            )
        n = replicas if policy in ("replicas", "replicas+aof") else 0
        return cls(policy, n, policy.endswith("aof"), timeout_ms)

    @property
    def waits(self) -> bool:
        """Whether replies wait for anything beyond the master applying the step."""
        return self.replicas > 0 or self.aof

    def command(self) -> tuple[Any, ...]:
        """The wait command that ends a batch."""
        if self.aof:
            return ("WAITAOF", 1, self.replicas, self.timeout_ms)
        return ("WAIT", self.replicas, self.timeout_ms)

    def shortfall(self, reply: Any) -> str | None:
        """What the wait's reply lacks (None when the batch is durable)."""
        if self.aof:
            local, acked = int(reply[0]), int(reply[1])
            if local < 1:
                return "the store did not fsync its append-only file in time"
        else:
            acked = int(reply)
        if acked < self.replicas:
            return f"{acked} of {self.replicas} replicas acknowledged in {self.timeout_ms} ms"
        return None

    def describe(self) -> str:
        if self.name == "master":
            return "master (a reply once the master applied the step)"
        if not self.strict:
            return (
                f"auto: {self.replicas} replica(s) hold each step before its reply (not waited "
                "for on a master with no replica connected)"
            )
        parts = []
        if self.replicas:
            parts.append(f"{self.replicas} replica(s)")
        if self.aof:
            parts.append("the master's AOF fsync")
        return f"{self.name} (a reply once {' and '.join(parts)} hold the step)"


def sync_key(key: str) -> str:
    """The marker key the batch barrier writes: in ``key``'s hash slot (its ``{tag}``)."""
    start = key.find("{")
    end = key.find("}", start + 1) if start >= 0 else -1
    if start >= 0 and end > start + 1:
        return key[: end + 1] + ":sync"
    return "{" + key + "}:sync"


class NotDurable(Exception):
    """A batch's wait fell short of the policy; ``reply`` is the script's own reply (it ran
    on the master). Becomes ``NOREPLICAS`` (``unavailable``) unless the master has no
    replica to wait for under ``auto``."""

    def __init__(self, why: str, reply: object) -> None:
        super().__init__(why)
        self.why = why
        self.reply = reply


def release_batch(
    calls: list[tuple[asyncio.Future[Any], asyncio.Future[Any]]],
    barrier: asyncio.Future[Any],
    wait: asyncio.Future[Any],
    policy: Durability,
) -> None:
    """Give each durable call of a batch its reply once the batch's wait answered: the
    script's own error, or its reply if the batch is durable, else a ``NOREPLICAS`` error
    (``unavailable``: the step ran; the client's retry finds it and waits again)."""
    problem: BaseException | None = None
    short: str | None = None
    barrier_failed = not barrier.cancelled() and barrier.exception() is not None
    if wait.cancelled() or barrier.cancelled():
        problem = redis.ConnectionError("connection to the store lost")
    elif (exc := wait.exception()) is not None:
        problem = exc
        if isinstance(exc, redis.ResponseError):  # e.g. WAITAOF on a store without an AOF
            log.error("the durability wait failed: %s", exc)
            problem = redis.ResponseError(f"NOREPLICAS the durability wait failed: {exc}")
    elif barrier_failed and parse_redirect(str(barrier.exception())) is None:
        # a redirected barrier (its slot moving) leaves the wait covering this connection's
        # own writes, which is what the batch did; any other failure makes it unknown
        problem = redis.ResponseError(f"NOREPLICAS the batch barrier failed: {barrier.exception()}")
    else:
        short = policy.shortfall(wait.result())
    for reply, result in calls:
        if result.done():
            if not reply.cancelled():
                reply.exception()
            continue
        if reply.cancelled():
            result.cancel()
        elif (exc := reply.exception()) is not None:
            result.set_exception(exc)
        elif problem is not None:
            result.set_exception(problem)
        elif short is not None:
            result.set_exception(NotDurable(short, reply.result()))
        else:
            result.set_result(reply.result())


def connected_replicas(info: Any) -> int:
    """``connected_slaves`` of an ``INFO replication`` reply."""
    text = info.decode() if isinstance(info, bytes) else str(info)
    for line in text.splitlines():
        if line.startswith("connected_slaves:"):
            return int(line.split(":", 1)[1])
    return 0

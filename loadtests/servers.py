"""Start and stop the servers under test: livesrv (with its own store) and the naive baseline.

Both are child processes that print their ``ws://`` (and for livesrv ``http://``) address on
stdout; the output goes to a log file that is polled for those lines.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

REPO = Path(__file__).resolve().parent.parent
URL_RE = re.compile(r"\b((?:ws|http)://[0-9A-Za-z.\[\]:_-]+(?:/[^\s'\"]*)?)")
STORE_NAMES = ("valkey-server", "redis-server")
# where a livesrv serve settles, and its flags for that
SETTLE_FLAGS = {"process": [], "inline": ["--settle-inline"], "separate": ["--no-settle"]}
SETTLE_MODES = tuple(SETTLE_FLAGS)


def livesrv_cmd() -> list[str]:
    """How to run the ``livesrv`` CLI: the module when importable, else the console script."""
    if (REPO / "livesrv" / "__main__.py").exists():
        return [sys.executable, "-m", "livesrv"]
    return ["livesrv"]


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    env.setdefault("PYTHONUNBUFFERED", "1")
    if extra:
        env.update(extra)
    return env


def audit(args: list[str], env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run ``livesrv audit ARGS`` (the store named by ``args``, live or not): its exit code
    (0: every invariant of docs/economy.md holds), its last line and how long it took."""
    t0 = time.monotonic()
    r = subprocess.run(
        [*livesrv_cmd(), "audit", *args],
        capture_output=True,
        text=True,
        timeout=600,
        env=child_env(env),
        cwd=str(REPO),
    )
    lines = (r.stdout + r.stderr).strip().splitlines()
    return {
        "exit": r.returncode,
        "last_line": lines[-1] if lines else "",
        "seconds": round(time.monotonic() - t0, 1),
    }


@dataclass
class ServerProcess:
    """A child server process whose stdout and stderr go to ``log``."""

    proc: subprocess.Popen[bytes]
    log: Path
    urls: dict[str, str] = field(default_factory=dict)
    extra: list[subprocess.Popen[bytes]] = field(default_factory=list)  # e.g. a settle process

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait_urls(self, schemes: tuple[str, ...], timeout: float = 60.0) -> dict[str, str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.log.read_text(errors="replace") if self.log.exists() else ""
            for m in URL_RE.finditer(text):
                url = m.group(1).rstrip(".,;)")
                scheme = url.split(":", 1)[0]
                self.urls.setdefault(scheme, url)
            if all(s in self.urls for s in schemes):
                return self.urls
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{text[-3000:]}")
            time.sleep(0.05)
        raise TimeoutError(f"server printed no {schemes} address in {timeout}s: {self.log}")

    def processes(self) -> list[psutil.Process]:
        """The server's own processes (the main one, its workers, a settle process), not
        the store."""
        procs: list[psutil.Process] = []
        for popen in (self.proc, *self.extra):
            try:
                root = psutil.Process(popen.pid)
                procs += [root, *root.children(recursive=True)]
            except psutil.NoSuchProcess:
                continue
        return [p for p in procs if _name(p) not in STORE_NAMES]

    def store_processes(self) -> list[psutil.Process]:
        try:
            root = psutil.Process(self.proc.pid)
            return [p for p in root.children(recursive=True) if _name(p) in STORE_NAMES]
        except psutil.NoSuchProcess:
            return []

    def rss(self) -> int:
        """Summed RSS (bytes) of the server's processes, store excluded."""
        return _rss(self.processes())

    def store_rss(self) -> int:
        return _rss(self.store_processes())

    def cpu_times(self) -> float:
        """CPU seconds (user + system) the server's processes used so far, store excluded."""
        return self.cpu_and_kernel_times()[0]

    def cpu_and_kernel_times(self) -> tuple[float, float]:
        """:meth:`cpu_times`, and the part of it the kernel spent for the server (system
        calls: on loopback a write also runs the reader's side of TCP), from one reading."""
        total = kernel = 0.0
        for p in self.processes():
            with contextlib.suppress(psutil.Error):
                t = p.cpu_times()
                total += t.user + t.system
                kernel += t.system
        return total, kernel

    def store_cpu_times(self) -> float:
        total = 0.0
        for p in self.store_processes():
            with contextlib.suppress(psutil.Error):
                t = p.cpu_times()
                total += t.user + t.system
        return total

    def run_queue_wait(self) -> float:
        """Seconds the server's threads have spent runnable but waiting for a core."""
        return run_queue_wait(self.processes())

    def store_run_queue_wait(self) -> float:
        return run_queue_wait(self.store_processes())

    def stop(self, timeout: float = 20.0) -> None:
        for extra in self.extra:
            if extra.poll() is None:
                extra.send_signal(signal.SIGTERM)
                try:
                    extra.wait(timeout)
                except subprocess.TimeoutExpired:
                    extra.kill()
                    extra.wait(5)
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                for p in reversed(self.processes() + self.store_processes()):
                    with contextlib.suppress(psutil.Error):
                        p.kill()
                self.proc.kill()
                self.proc.wait(5)


def _name(p: psutil.Process) -> str:
    try:
        return p.name()
    except psutil.Error:
        return ""


def run_queue_wait(procs: list[psutil.Process]) -> float:
    """Seconds the threads of ``procs`` have spent runnable but waiting for a core (the
    second field of Linux's ``/proc/PID/task/TID/schedstat``, in ns; 0 where it cannot be
    read). On a machine the servers, the store and the load share, this is the time a
    process was held up by the others: a profile counts it where the process was
    preempted, often right after a write woke the reader."""
    total = 0
    for p in procs:
        with contextlib.suppress(OSError, ValueError, IndexError):
            for tid in os.listdir(f"/proc/{p.pid}/task"):
                with contextlib.suppress(OSError, ValueError, IndexError):
                    stat = Path(f"/proc/{p.pid}/task/{tid}/schedstat").read_text()
                    total += int(stat.split()[1])
    return total / 1e9


def _rss(procs: list[psutil.Process]) -> int:
    total = 0
    for p in procs:
        with contextlib.suppress(psutil.Error):
            total += p.memory_info().rss
    return total


@dataclass
class Livesrv(ServerProcess):
    data_dir: Path = Path()
    admin_token: str = ""

    @property
    def ws_url(self) -> str:
        url = self.urls["ws"]
        return url if url.rstrip("/").endswith("/ws") else url.rstrip("/") + "/ws"

    @property
    def http_url(self) -> str:
        return self.urls["http"].rstrip("/")

    def api(self, method: str, path: str, body: Any = None) -> Any:
        req = urllib.request.Request(
            self.http_url + path,
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={
                "Authorization": f"Bearer {self.admin_token}",
                "Content-Type": "application/json",
            },
        )
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.loads(resp.read() or b"null")

    def metrics(self) -> str:
        with urllib.request.urlopen(self.http_url + "/metrics", timeout=10) as resp:
            return str(resp.read().decode())

    def audit(self, env: dict[str, str] | None = None) -> dict[str, Any]:
        """``livesrv audit`` of this server's own store, while it runs."""
        return audit(["--data-dir", str(self.data_dir)], env)


def start_livesrv(
    data_dir: Path,
    *,
    workers: int = 1,
    env: dict[str, str] | None = None,
    timeout: float = 90.0,
    settle: str = "process",
) -> Livesrv:
    """Start ``livesrv serve`` on loopback, port 0, with its own store in ``data_dir``.

    ``settle``: ``process``, serve's default (a settlement process of its own, a child of
    serve); ``inline``, ``serve --settle-inline``; ``separate``, serve ``--no-settle`` and
    a separate ``livesrv settle``. Every settling process's CPU and memory count as the
    server's.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    log = data_dir / "serve.log"
    cmd = [
        *livesrv_cmd(),
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--http-port",
        "0",
        "--data-dir",
        str(data_dir),
    ]
    if workers > 1:
        cmd += ["--workers", str(workers)]
    if settle not in SETTLE_FLAGS:
        raise ValueError(f"settle must be one of {SETTLE_MODES}, not {settle!r}")
    cmd += SETTLE_FLAGS[settle]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            cmd,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=child_env(env),
            cwd=str(REPO),
            start_new_session=True,
        )
    server = Livesrv(proc=proc, log=log, data_dir=data_dir)
    try:
        server.wait_urls(("ws", "http"), timeout)
        server.admin_token = mint_cli_token(data_dir, "bench-admin", "admin", env)
        _wait_healthy(server.http_url, timeout)
        if settle == "separate":
            with (data_dir / "settle.log").open("wb") as out:
                server.extra.append(
                    subprocess.Popen(
                        [*livesrv_cmd(), "settle", "--data-dir", str(data_dir)],
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        env=child_env(env),
                        cwd=str(REPO),
                        start_new_session=True,
                    )
                )
    except BaseException:
        server.stop()
        raise
    return server


def mint_cli_token(data_dir: Path, user: str, role: str, env: dict[str, str] | None) -> str:
    out = subprocess.run(
        [*livesrv_cmd(), "token", user, "--role", role, "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        env=child_env(env),
        cwd=str(REPO),
        timeout=60,
        check=True,
    ).stdout
    tokens = [w for w in out.split() if w.count(".") == 2 and len(w) > 40]
    if not tokens:
        raise RuntimeError(f"livesrv token printed no token: {out!r}")
    return tokens[-1]


def _wait_healthy(http_url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(http_url.rstrip("/") + "/healthz", timeout=5) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError("livesrv /healthz never answered 200")
        time.sleep(0.1)


def start_naive(log_dir: Path, timeout: float = 30.0) -> ServerProcess:
    """The naive fan-out server (``loadtests/naive_server.py``)."""
    return _start_baseline(log_dir / "naive.log", "loadtests.naive_server", [], timeout)


def start_plain_gifts(log_dir: Path, store_url: str, timeout: float = 30.0) -> ServerProcess:
    """The plain one-script gift server (``loadtests/plain_gift_server.py``) on ``store_url``."""
    log = log_dir / "plain-gifts.log"
    return _start_baseline(log, "loadtests.plain_gift_server", ["--redis-url", store_url], timeout)


def _start_baseline(log: Path, module: str, args: list[str], timeout: float) -> ServerProcess:
    """``python -m MODULE --port 0 ARGS``, its output in ``log``; returned once it has printed
    its ``ws://`` URL (stopped if it does not)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", module, "--port", "0", *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=child_env(),
            cwd=str(REPO),
            start_new_session=True,
        )
    server = ServerProcess(proc=proc, log=log)
    try:
        server.wait_urls(("ws",), timeout)
    except BaseException:
        server.stop()
        raise
    return server

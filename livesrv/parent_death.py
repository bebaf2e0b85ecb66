"""Child processes that go when their parent does (Linux's parent-death signal).

serve's children use it: the embedded store and local cluster nodes (``SIGTERM``: they
flush their AOF and exit), the ``--workers`` processes (``SIGTERM``: they close their
connections with 1001) and the settlement process (``SIGKILL``: nothing of it is owed to a
client). A serve that is killed so leaves nothing of itself running.
"""

from __future__ import annotations

import ctypes
import signal
from functools import partial
from typing import Any

_PR_SET_PDEATHSIG = 1


def _prctl() -> Any:
    """libc's ``prctl``, looked up at import, in the parent: a child between fork and exec
    only calls it (loading a library there could wait forever on a lock that another
    thread of the parent held at the fork)."""
    try:
        return ctypes.CDLL("libc.so.6", use_errno=True).prctl
    except (OSError, AttributeError):  # not Linux: children may outlive a killed serve
        return None


_PRCTL = _prctl()


def tie_to_parent(sig: int) -> None:
    """Have the kernel send ``sig`` to this process when its parent exits."""
    if _PRCTL is not None:
        _PRCTL(_PR_SET_PDEATHSIG, sig)


term_with_parent = partial(tie_to_parent, signal.SIGTERM)
kill_with_parent = partial(tie_to_parent, signal.SIGKILL)

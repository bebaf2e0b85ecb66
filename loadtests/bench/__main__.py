"""``python -m loadtests.bench``: the benchmark harness (see :mod:`loadtests.bench`)."""

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a directory: python loadtests/bench
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent.parent))

from loadtests.bench.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())

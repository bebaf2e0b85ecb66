import sys

from .cli import main

if __name__ == "__main__":  # only when run (python -m livesrv), never when imported
    sys.exit(main())

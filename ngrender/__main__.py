"""``python -m ngrender``, ``python main.py`` and the ``ngrender`` console script: Ctrl-C while the modules are
still loading is an interrupt (exit 130), not a traceback."""
from __future__ import annotations

import sys


def run() -> int:
    try:
        from .cli import main
    except KeyboardInterrupt:
        print("ngrender: interrupted", file=sys.stderr)
        return 130
    return main()


if __name__ == "__main__":
    sys.exit(run())

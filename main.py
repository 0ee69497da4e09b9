"""`python main.py <command> ...` is the `ngrender` console script."""
import sys

from ngrender.__main__ import run

if __name__ == "__main__":
    sys.exit(run())

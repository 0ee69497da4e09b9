"""`python main.py <command> ...` is the `ngrender` console script."""
import sys

from ngrender.cli import main

if __name__ == "__main__":
    sys.exit(main())

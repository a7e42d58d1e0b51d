"""``python -m safeguards``: the command line (see :mod:`safeguards.cli`)."""

import sys

from safeguards.cli import main

if __name__ == "__main__":
    sys.exit(main())

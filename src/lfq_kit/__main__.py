"""``python -m lfq_kit`` is the ``lfq-kit`` command."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())

"""``python -m foresight`` is ``foresight``."""

from __future__ import annotations

import sys

from foresight.cli import main

if __name__ == "__main__":
    sys.exit(main())

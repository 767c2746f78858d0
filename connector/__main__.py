"""`python -m connector ...` is `sla-connector ...`."""

from __future__ import annotations

import sys

from connector.cli.main import main

if __name__ == "__main__":
    sys.exit(main())

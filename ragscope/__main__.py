"""`python -m ragscope` runs the console script."""

from __future__ import annotations

from ragscope.cli import main

raise SystemExit(main())

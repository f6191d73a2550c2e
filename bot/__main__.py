"""`python -m bot`: run the Discord bot (see `bot/app.py`)."""

from __future__ import annotations

import sys

from bot.app import main

sys.exit(main())

"""``python -m toolkit``."""

from .cli import main

raise SystemExit(main())

from __future__ import annotations

from sdlint.cli import main

raise SystemExit(main())

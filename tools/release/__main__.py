"""``python -m tools.release DIST=PART ... [--raise-core-floor] [--dry-run]`` or ``... record``."""

import sys

from tools.release._cli import main

sys.exit(main())

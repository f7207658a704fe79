"""``python -m tools.release DISTRIBUTION --bump minor|patch|major [--dry-run]``."""

import sys

from tools.release._cli import main

sys.exit(main())

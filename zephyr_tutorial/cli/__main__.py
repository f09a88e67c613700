"""``python -m zephyr_tutorial.cli`` (what ``accelerate launch -m zephyr_tutorial.cli`` runs on every process)."""

import sys

from . import main

sys.exit(main())

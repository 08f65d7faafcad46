"""``python -m edge_pusher ...``: the OTA commands without the pipelines CLI (base install)."""

import sys

from edge_pusher.cli import main

sys.exit(main())

"""``python -m edgeship ...``: the same command line as the ``edgeship`` script."""

import sys

from edgeship.cli import main

sys.exit(main())

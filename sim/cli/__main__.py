"""``python -m sim.cli COMMAND ...``: the ``purgatory`` command without its console script."""

import sys

from sim.cli import main

sys.exit(main())

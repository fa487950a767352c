"""`python -m mksap.cli`: the same entry point as the `mksap` script."""

import sys

from mksap.cli import main

sys.exit(main())

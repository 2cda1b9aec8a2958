"""`python -m virtkit` runs the same command line as the `virtkit` script."""

import sys

from virtkit.cli import main

sys.exit(main())

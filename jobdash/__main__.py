"""`python -m jobdash`: the `jobdash` command."""

import sys

from jobdash.app.cli import main

sys.exit(main())

"""`python -m jobdash`: the `jobdash` command."""

import sys

from jobdash.app.cli.main import main

sys.exit(main())

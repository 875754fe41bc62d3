"""`python -m nexa_core.cli`: the same as the `nexa` console script."""

import sys

from nexa_core.cli.main import main

sys.exit(main())

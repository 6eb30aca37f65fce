"""`python -m nexus_assets.cli`: the same as the `nexus-agent` command."""

import sys

from nexus_assets.cli.main import main

sys.exit(main())

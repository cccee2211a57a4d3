"""`python -m node.cli`: the `dsgo` command."""

import sys

from node.cli import main

sys.exit(main())

"""`python -m node.cli`: the same as `dsgo` (examples/demo.py runs the CLI this way)."""

import sys

from node.cli import main

sys.exit(main())

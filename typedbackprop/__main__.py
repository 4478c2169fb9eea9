"""``python -m typedbackprop``: the same command line as the ``typedbackprop`` script."""

import sys

from typedbackprop.cli import main

sys.exit(main())

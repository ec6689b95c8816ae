"""``python -m workbench`` is the ``observatory`` command."""

import sys

from .cli import main

sys.exit(main())

"""``python -m notifier``: the operator tools (see :mod:`notifier.cli`)."""

import sys

from notifier.cli import main

sys.exit(main())

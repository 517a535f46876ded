"""``python -m flts`` is the ``flts`` command (handy where the console script is not on PATH)."""

import sys

from flts.cli import main

sys.exit(main())

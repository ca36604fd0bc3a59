"""``python -m eisnn`` runs the ``eisnn`` command."""

import sys

from eisnn.cli import main

sys.exit(main())

"""``python -m ranch_core.demo``: the ``ranch-demo`` command line without an adapter's entry point.

``python -m ranch_core.demo --scenario limits`` (and ``runtime``, ``groups``) needs nothing but ranch-core;
the flood scenario still needs a backend (``--backend celery`` or ``dramatiq``).
"""

import sys

from ranch_core.demo.cli import main

if __name__ == "__main__":
    sys.exit(main(prog="python -m ranch_core.demo"))

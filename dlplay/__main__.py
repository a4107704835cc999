"""`python -m dlplay` runs the command line."""
import sys

from dlplay.cli import main

sys.exit(main())

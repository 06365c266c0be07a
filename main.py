"""Run socialcare from a checkout: `python main.py run` is `socialcare run`."""

import sys

from socialcare.main import cli

if __name__ == "__main__":
    sys.exit(cli())

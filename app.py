"""Entry point: `python app.py --source IN --output OUT` annotates a file (see README)."""

import sys

from vitpose_live.cli import console_main

if __name__ == "__main__":
    console_main()

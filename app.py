"""Entry point.

- `python app.py --source IN --output OUT` annotates a file, a camera or a stream (the command
  line, see README);
- `python app.py` without `--source` starts the web app (what Hugging Face Spaces runs); it takes
  `--model PATH --detector PATH --device --dtype --server-name --server-port --share`.
"""

import sys


def _wants_command_line(argv: list[str]) -> bool:
    return any(arg == "--source" or arg.startswith("--source=") for arg in argv)


if __name__ == "__main__":
    if _wants_command_line(sys.argv[1:]):
        from vitpose_live.cli import console_main

        console_main()
    else:
        from vitpose_live.ui import main

        main()

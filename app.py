"""Entry point.

- `python app.py --source IN --output OUT` annotates a file, a camera or a stream (the command
  line, see README);
- `python app.py` without `--source` starts the web app (what Hugging Face Spaces runs); it takes
  `--model PATH --detector PATH --device --dtype --server-name --server-port --share`;
- `python app.py --help` shows both.

A flag neither takes (`--sorce clip.mp4`) ends at once with one line naming the nearest flag.
"""

import sys


def _wants_command_line(argv: list[str]) -> bool:
    return any(arg == "--source" or arg.startswith("--source=") for arg in argv)


def _print_help() -> None:
    from vitpose_live.apps.cli import build_parser as command_line_parser
    from vitpose_live.apps.flags import web_app_parser

    web_app, command_line = web_app_parser(), command_line_parser()
    command_line.prog = "app.py"
    print("app.py runs two ways: the web app (without --source) or the command line (with --source).\n")
    print("== The web app ==\n")
    web_app.print_help()
    print("\n== The command line ==\n")
    command_line.print_help()


if __name__ == "__main__":
    if _wants_command_line(sys.argv[1:]):
        from vitpose_live.apps.cli import console_main

        console_main()  # an unknown flag: one line before torch loads (vitpose_live.apps.flags)
    elif "-h" in sys.argv[1:] or "--help" in sys.argv[1:]:
        _print_help()
    else:
        from vitpose_live.apps.cli import build_parser
        from vitpose_live.apps.flags import check_flags, web_app_parser

        check_flags(sys.argv[1:], web_app_parser(), build_parser())  # before gradio is imported
        from vitpose_live.apps.web import main

        main()

"""The flags of ``app.py``'s two faces, checked before anything heavy loads.

``app.py`` is the web app without ``--source`` and the command line with it; a typo in a flag
(``--sorce clip.mp4``) would otherwise fall through to the web app, import gradio and fail
seconds later with its usage. :func:`check_flags` looks at the flags alone, in milliseconds, and
ends a mistake with one line and the nearest flag (``did you mean --source?``). This module
imports neither torch nor gradio; the web app's parser lives here so that it can be read
without gradio.
"""

from __future__ import annotations

import argparse
import difflib
import sys

from ..defaults import check_at_least
from .console import EXIT_USAGE, PROG

STREAM_MINUTES = 5  # a webcam stream's longest life on the page, by default
ICE_ENV = "VITPOSE_ICE_SERVERS"  # RTCIceServer JSON for both WebRTC peers (a Space secret)


def web_app_parser() -> argparse.ArgumentParser:
    """``python app.py [--model PATH] [--detector PATH] ... [--share]``: the web app's flags."""
    parser = argparse.ArgumentParser(
        prog="app.py",
        description="The vitpose_live web app (Gradio). With --source, app.py is the command line instead "
        "(see app.py --source X --help).",
        epilog=f"WebRTC's STUN/TURN servers (for the Webcam tab across NAT): ${ICE_ENV}, RTCIceServer JSON.",
    )
    parser.add_argument("--model", help="ViTPose Hub id or local directory, offered first in the model list")
    parser.add_argument("--detector", help="person detector Hub id or local directory (default: the device's)")
    parser.add_argument("--device", default="auto", help="auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:N, mps")
    parser.add_argument("--dtype", default="auto", help="auto (fp16 on CUDA, fp32 elsewhere), fp32, fp16, bf16")
    parser.add_argument("--server-name", help="address to listen on (default 127.0.0.1, or $GRADIO_SERVER_NAME)")
    parser.add_argument("--server-port", type=int, help="port (default 7860, or $GRADIO_SERVER_PORT)")
    parser.add_argument("--share", action="store_true", help="also make a temporary public gradio.live link")
    parser.add_argument("--webrtc-sessions", type=_at_least_one, default=4, metavar="N",
                        help="WebRTC webcam streams at once (default 4; the next page is told the server is busy)")
    parser.add_argument("--stream-minutes", type=_at_least_one, default=STREAM_MINUTES, metavar="N",
                        help=f"a webcam stream stops after N minutes, then Start begins a new one (default "
                        f"{STREAM_MINUTES})")
    return parser


def _at_least_one(text: str) -> int:
    try:
        value = int(text)
        check_at_least("it", value, 1)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1, got {text!r}") from None
    return value


def flags_of(parser: argparse.ArgumentParser) -> set[str]:
    """Every ``--long`` flag ``parser`` takes."""
    return {flag for action in parser._actions for flag in action.option_strings if flag.startswith("--")}


def flag_mistake(argv: list[str], wanted: argparse.ArgumentParser,
                 other: argparse.ArgumentParser | None = None) -> str | None:
    """What is wrong with the flags of ``argv`` for the face ``wanted`` (one line), or None.
    A flag may be shortened as argparse allows (``--det-thr``: argparse resolves it). ``other``:
    the face a flag may belong to instead (the command line, for the web app's ``argv``)."""
    known = flags_of(wanted)
    for arg in argv:
        if arg == "--":
            break
        if not arg.startswith("--"):
            continue
        flag = arg.split("=", 1)[0]
        if any(name.startswith(flag) for name in known):
            continue
        if other is not None and any(name.startswith(flag) for name in flags_of(other)):
            return f"{flag} is for the command line: add --source IN (see {PROG} --help)"
        every = sorted(known | (flags_of(other) if other is not None else set()))
        near = difflib.get_close_matches(flag, every, n=1, cutoff=0.75)
        return f"unknown flag {flag}" + (f" (did you mean {near[0]}?)" if near else f" (see {PROG} --help)")
    return None


def check_flags(argv: list[str], wanted: argparse.ArgumentParser, other: argparse.ArgumentParser | None = None) -> None:
    """Exit with status 2 and one line when :func:`flag_mistake` finds one."""
    mistake = flag_mistake(argv, wanted, other)
    if mistake:
        print(f"{PROG}: error: {mistake}", file=sys.stderr)
        raise SystemExit(EXIT_USAGE)

"""A typo in a flag ends at once, in one line with the nearest flag, before torch or gradio is
imported; messages name the program as the user typed it (``app.py`` or ``vitpose-live``)."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from vitpose_live.apps.cli import build_parser
from vitpose_live.apps.console import program_name
from vitpose_live.apps.flags import flag_mistake, web_app_parser

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("argv,face,expected", [
    (["--sorce", "clip.mp4"], "web", "unknown flag --sorce (did you mean --source?)"),
    (["--source", "c.mp4", "--outptu", "o.mp4"], "cli", "unknown flag --outptu (did you mean --output?)"),
    (["--source=c.mp4", "--det-evry=2"], "cli", "unknown flag --det-evry (did you mean --det-every?)"),
    (["--server-prot", "80"], "web", "unknown flag --server-prot (did you mean --server-port?)"),
    (["--bogus"], "web", "unknown flag --bogus (see vitpose-live --help)"),
    (["--output", "o.mp4"], "web", "--output is for the command line: add --source IN (see vitpose-live --help)"),
    (["--source", "c.mp4", "--det-thr", "0.4", "--", "--anything"], "cli", None),  # argparse's abbreviations
    (["--device", "cpu", "--share"], "web", None),
])
def test_a_flag_neither_face_takes_is_named_with_the_nearest_one(argv, face, expected):
    cli = build_parser()
    wanted, other = (web_app_parser(), cli) if face == "web" else (cli, None)
    assert flag_mistake(argv, wanted, other) == expected


def test_a_typo_in_app_py_is_one_line_in_well_under_a_second_without_torch_or_gradio(tmp_path):
    started = time.monotonic()
    result = subprocess.run([sys.executable, "app.py", "--sorce", "clip.mp4"], cwd=REPO, capture_output=True,
                            text=True, timeout=60)
    seconds = time.monotonic() - started
    assert result.returncode == 2 and result.stderr == "app.py: error: unknown flag --sorce (did you mean --source?)\n"
    assert seconds < 2.0  # 0.3-0.4 s on the 2-core development machine; the web app's parser took 4 s
    probe = ("import runpy, sys\nsys.argv = ['app.py', '--sorce', 'clip.mp4']\n"
             "try:\n    runpy.run_path('app.py', run_name='__main__')\nexcept SystemExit:\n    pass\n"
             "print(sorted(m for m in ('torch', 'gradio', 'transformers', 'cv2', 'av') if m in sys.modules))")
    imported = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert imported.stdout.strip() == "[]", imported.stderr


def test_the_command_line_names_itself_as_typed(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    module = subprocess.run([sys.executable, "-m", "vitpose_live.apps.cli", "--sorce", "x"], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=60)
    assert module.returncode == 2 and module.stderr == "vitpose-live: error: unknown flag --sorce (did you mean --source?)\n"
    missing = subprocess.run([sys.executable, "app.py", "--source", tmp_path / "none.mp4", "--output", tmp_path / "o.mp4"],
                             cwd=REPO, capture_output=True, text=True, timeout=60)
    assert missing.returncode == 2 and missing.stderr.startswith("app.py: error: cannot open")
    assert [program_name(name) for name in ("app.py", "/venv/bin/vitpose-live", "cli.py", "")] == [
        "app.py", "vitpose-live", "vitpose-live", "vitpose-live"]

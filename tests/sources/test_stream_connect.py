"""Connecting to a stream that fails, against real sockets on this machine: each attempt is said
while it happens, the whole connecting gives up within its stated timeout, and the cause is named
in a user's words (refused, no answer within N s, name not found, not a video stream)."""

import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from vitpose_live.sources import SourceError, StreamSource

REPO = Path(__file__).resolve().parents[2]


class Listener:
    """A TCP listener on 127.0.0.1: ``reply`` None accepts and never answers; else it reads the
    request and sends ``reply``."""

    def __init__(self, reply: bytes | None):
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port, self.reply, self.held = self.server.getsockname()[1], reply, []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            self.held.append(client)
            if self.reply is not None:
                client.settimeout(0.5)
                try:
                    client.recv(4096)
                    client.sendall(self.reply)
                except OSError:
                    pass

    def close(self):
        self.server.close()
        for client in self.held:
            client.close()


def refused_port() -> int:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        return probe.getsockname()[1]


TEXT = b"<html>" + b"this is a web page, not a video " * 300 + b"</html>"
WEB_PAGE = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: %d\r\n\r\n" % len(TEXT) + TEXT


@pytest.mark.parametrize("case,cause", [
    ("refused", "connection refused"),
    ("silent", "no answer within "),
    ("no name", "name not found: 'nohost.invalid'"),
    ("web page", "not a video stream"),
])
def test_a_stream_that_cannot_be_opened_names_the_cause_and_says_each_attempt(case, cause):
    listener = Listener(None if case == "silent" else WEB_PAGE) if case in ("silent", "web page") else None
    url = {"refused": f"http://127.0.0.1:{refused_port()}/live", "no name": "http://nohost.invalid/live"}.get(
        case, f"http://127.0.0.1:{listener.port if listener else 0}/live")
    said = []
    started = time.monotonic()
    try:
        with pytest.raises(SourceError) as caught:
            StreamSource(url, reconnect_attempts=3, backoff=0.05, open_timeout=1.0, connect_timeout=2.0,
                         on_status=said.append)
    finally:
        if listener:
            listener.close()
    seconds = time.monotonic() - started
    assert str(caught.value).startswith(f"cannot open stream '{url}': {cause}"), str(caught.value)
    assert "(--connect-timeout 2 s)" in str(caught.value) and seconds < 2.0 + 1.0
    assert said[0] == f"connecting to '{url}' (attempt 1 of 3)"
    assert said[1:2] == [f"connecting to '{url}' (attempt 2 of 3)"]


def test_the_connect_timeout_bounds_every_attempt_together():
    listener = Listener(None)
    said = []
    started = time.monotonic()
    try:
        with pytest.raises(SourceError, match=r"no answer within 1 s; gave up after 1 attempt\(s\)"):
            StreamSource(f"tcp://127.0.0.1:{listener.port}", reconnect_attempts=5, open_timeout=5.0,
                         connect_timeout=1.0, on_status=said.append)
    finally:
        listener.close()
    assert time.monotonic() - started < 2.0 and len(said) == 1  # not 5 attempts of 5 s


def test_the_command_line_says_it_is_connecting_and_takes_connect_timeout(tmp_path, pose_dir, detector_dir):
    url = f"rtsp://127.0.0.1:{refused_port()}/live"
    result = subprocess.run(
        [sys.executable, "-m", "vitpose_live.apps.cli", "--source", url, "--keypoints", str(tmp_path / "k.jsonl"),
         "--no-window", "--device", "cpu", "--model", pose_dir, "--detector", detector_dir, "--connect-timeout", "1"],
        cwd=REPO, capture_output=True, text=True, timeout=120)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and lines[0] == f"vitpose-live: connecting to '{url}' (attempt 1 of 5)"
    assert lines[-1].startswith(f"vitpose-live: error: cannot open stream '{url}': connection refused; gave up after ")
    assert lines[-1].endswith("(--connect-timeout 1 s)")

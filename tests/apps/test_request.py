"""The request record: built once from the command line, the same options with the same defaults,
and what a collection's input or a Ray worker receives."""

import pickle
from dataclasses import fields
from pathlib import Path

import pytest

from vitpose_live.apps.cli import build_parser, parse_request
from vitpose_live.apps.request import Request, check_collection, check_request
from vitpose_live.defaults import FILL_GAPS
from vitpose_live.errors import UserError


def test_every_command_line_option_is_a_field_of_the_request_with_the_same_default():
    parser = build_parser()
    dests = {action.dest: action.default for action in parser._actions if action.dest != "help"}
    assert set(dests) == {f.name for f in fields(Request)}
    defaults = Request(source="x")
    assert {name: getattr(defaults, name) for name in dests if name != "source"} == {
        name: value for name, value in dests.items() if name != "source"}


def test_the_request_carries_what_was_typed():
    request = parse_request(["--source", "in.mp4", "--det-threshold", "0.7", "--no-video", "--output-dir", "out"])
    assert (request.source, request.det_threshold, request.no_video, request.is_collection) == ("in.mp4", 0.7, True, True)


def test_one_input_of_a_collection_gets_its_own_outputs_quietly_without_a_window():
    request = parse_request(["--source", "dir", "--output-dir", "out", "--kpt-threshold", "0.4"])
    one = request.for_input(Path("dir/a.mp4"), output=Path("out/.a.mp4"), keypoints=Path("out/.a.jsonl"))
    assert (one.source, one.output, one.keypoints) == ("dir/a.mp4", "out/.a.mp4", "out/.a.jsonl")
    assert one.no_progress and one.window is False and not one.realtime and one.stats_json is None
    assert one.kpt_threshold == 0.4  # the collection's settings travel along


def test_the_request_travels_to_ray_workers_as_it_is():
    request = parse_request(["--source", "dir", "--output-dir", "out", "--ray", "--workers", "2"])
    assert pickle.loads(pickle.dumps(request)) == request


@pytest.mark.parametrize("argv, message", [
    (["--source", "missing.mp4", "--output", "o.mp4"], "file not found"),
    (["--source", "synthetic"], "nothing to do"),
    (["--source", "synthetic", "--keypoints", "k.jsonl", "--det-threshold", "1.5"], "--det-threshold must be between 0 and 1"),
    (["--source", "synthetic", "--keypoints", "k.jsonl", "--max-persons", "0"], "--max-persons must be at least 1"),
    (["--source", "synthetic", "--keypoints", "k.jsonl", "--formats", "csv"], "--formats is for collections"),
    (["--source", "synthetic", "--keypoints", "k.jsonl", "--smooth", "offline"], "--smooth offline is for files"),
    (["--source", "clip.mp4", "--keypoints", "k.jsonl", "--smooth", "offline", "--realtime"], "live source .* stays causal"),
    (["--source", "clip.mp4", "--keypoints", "k.jsonl", "--fill-gaps", "3"], "--fill-gaps is for --smooth offline"),
    (["--source", "clip.mp4", "--keypoints", "k.jsonl", "--smooth", "offline", "--fill-gaps", "-1"], "--fill-gaps must not be negative"),
])
def test_a_request_that_cannot_run_is_refused_in_one_line_before_any_model_loads(tmp_path, monkeypatch, argv, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "clip.mp4").write_bytes(b"")  # only its existence is checked before the models load
    with pytest.raises(UserError, match=message):
        check_request(parse_request(argv))


def test_a_collection_request_names_its_formats_or_is_refused():
    assert check_collection(parse_request(["--source", "d", "--output-dir", "o", "--formats", "csv,jsonl"])) == ("csv", "jsonl")
    with pytest.raises(UserError, match="--formats takes"):
        check_collection(parse_request(["--source", "d", "--output-dir", "o", "--formats", "xml"]))


@pytest.mark.parametrize("argv, one_euro, tracking, offline", [
    ([], False, False, False),  # a file: no smoothing, no tracking
    (["--smooth"], True, True, False),  # a bare --smooth keeps meaning One Euro
    (["--smooth", "offline"], False, True, True),  # tracked; smoothed after the run, not by One Euro
    (["--no-smooth"], False, False, False),
])
def test_smooth_means_one_euro_bare_and_the_offline_analysis_with_offline(argv, one_euro, tracking, offline):
    from vitpose_live.apps.job import engine_options

    # --det-every 1: a detector on fewer frames (the CPU profile's 5) is tracked whatever --smooth says
    request = parse_request(["--source", "in.mp4", "--device", "cpu", "--model", "m", "--detector", "d",
                             "--det-every", "1", *argv])
    options = engine_options(request, live=False)
    assert (options.settings.smooth, options.tracking, request.offline) == (one_euro, tracking, offline)
    assert request.gaps_filled == FILL_GAPS and parse_request(["--source", "x", "--fill-gaps", "2"]).gaps_filled == 2


def test_an_unknown_smoothing_mode_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as stop:
        parse_request(["--source", "in.mp4", "--smooth", "kalman"])
    assert stop.value.code == 2 and "invalid choice: 'kalman'" in capsys.readouterr().err

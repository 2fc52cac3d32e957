"""What ``auto`` means per device: one choice, read by the command line and the web app alike;
explicit values win; the profile's interval, rest and person cap hold whichever detector runs, and
only its input size goes with its own detector."""

import subprocess
import sys

import pytest

from vitpose_live.apps.cli import parse_request
from vitpose_live.apps.job import engine_options
from vitpose_live.defaults import DEFAULT_DETECTOR, DEFAULT_POSE_MODEL
from vitpose_live.engine.profiles import CPU_PROFILE, GPU_PROFILE, DeviceProfile, profile_for, resolve
from vitpose_live.apps.web.settings import defaults_for


def test_cuda_gets_the_gpu_defaults_and_everything_else_the_cpu_profile():
    assert profile_for("cuda:1") is GPU_PROFILE and profile_for("cpu") is CPU_PROFILE and profile_for("mps") is CPU_PROFILE
    assert (GPU_PROFILE.pose_model, GPU_PROFILE.detector, GPU_PROFILE.det_every) == (DEFAULT_POSE_MODEL, DEFAULT_DETECTOR, 1)
    assert GPU_PROFILE.detector_size is None and GPU_PROFILE.detector_gap_s == 0
    assert "small" in CPU_PROFILE.pose_model and CPU_PROFILE.detector_size < 640
    assert CPU_PROFILE.det_every > 1 and CPU_PROFILE.detector_gap_s > 0 and CPU_PROFILE.max_persons


def test_the_profile_module_does_not_import_torch():
    code = "import sys, vitpose_live.engine.profiles; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("kwargs,expected", [
    ({}, (CPU_PROFILE.pose_model, CPU_PROFILE.detector, CPU_PROFILE.detector_size, CPU_PROFILE.det_every,
          CPU_PROFILE.detector_gap_s, CPU_PROFILE.max_persons)),
    ({"model": "m"}, ("m", CPU_PROFILE.detector, CPU_PROFILE.detector_size, CPU_PROFILE.det_every,
                      CPU_PROFILE.detector_gap_s, CPU_PROFILE.max_persons)),
    ({"detector": "d"}, (CPU_PROFILE.pose_model, "d", None, CPU_PROFILE.det_every, CPU_PROFILE.detector_gap_s,
                         CPU_PROFILE.max_persons)),
    ({"detector": "d", "detector_size": "320"}, (CPU_PROFILE.pose_model, "d", 320, CPU_PROFILE.det_every,
                                                 CPU_PROFILE.detector_gap_s, CPU_PROFILE.max_persons)),
    ({"detector_size": 480, "det_every": 2, "max_persons": 9},
     (CPU_PROFILE.pose_model, CPU_PROFILE.detector, 480, 2, CPU_PROFILE.detector_gap_s, 9)),
])
def test_explicit_values_win_and_only_the_input_size_goes_with_the_profiles_own_detector(kwargs, expected):
    choice = resolve(CPU_PROFILE, **kwargs)
    assert (choice.model, choice.detector, choice.detector_size, choice.det_every, choice.detector_gap_s,
            choice.max_persons) == expected


def test_a_profile_refuses_impossible_values():
    with pytest.raises(ValueError, match="detector_size"):
        DeviceProfile("x", "m", "d", detector_size=8, det_every=1, detector_gap_s=0, max_persons=None, device_label="x")


def test_the_command_line_defaults_to_auto_and_resolves_it_through_the_profile(tmp_path):
    args = parse_request(["--source", "x.mp4", "--device", "cpu"])
    assert (args.model, args.detector, args.detector_size) == ("auto", "auto", "auto")
    live = engine_options(args, live=True)
    assert (live.models.model, live.models.detector) == (CPU_PROFILE.pose_model, CPU_PROFILE.detector)
    assert live.models.detector_size == CPU_PROFILE.detector_size and live.det_every == CPU_PROFILE.det_every
    assert live.detector_gap_s == CPU_PROFILE.detector_gap_s and live.settings.max_persons == CPU_PROFILE.max_persons
    assert engine_options(args, live=False).detector_gap_s == 0  # files never skip a detection for pace
    explicit = parse_request(["--source", "x.mp4", "--device", "cpu", "--model", "M", "--detector", "D"])
    options = engine_options(explicit, live=True)
    assert (options.models.model, options.models.detector, options.models.detector_size) == ("M", "D", None)
    assert options.det_every == CPU_PROFILE.det_every and options.settings.max_persons == CPU_PROFILE.max_persons
    assert options.detector_gap_s == CPU_PROFILE.detector_gap_s


@pytest.mark.parametrize("device", ["cpu", "cuda:0"])
@pytest.mark.parametrize("detector", ["auto", "my/detector"])
def test_the_page_and_the_command_line_given_the_same_detector_detect_as_often_and_cap_alike(device, detector):
    page = defaults_for(device, detector=None if detector == "auto" else detector)
    cli = engine_options(parse_request(["--source", "x.mp4", "--device", device, "--detector", detector]), live=True)
    assert page.det_every == cli.det_every == profile_for(device).det_every
    assert page.detector_gap_s == cli.detector_gap_s and page.detector_size == cli.models.detector_size
    capped = profile_for(device).max_persons
    assert cli.settings.max_persons == capped and page.max_persons == (capped or 20)  # a slider needs a number


def test_the_summary_line_says_how_often_the_detector_ran_and_the_person_cap(run_cli, tmp_path):
    from support.media import make_clip

    clip = make_clip(tmp_path / "clip.mp4", frames=3)
    code, err = run_cli("--source", clip, "--keypoints", tmp_path / "k.jsonl")
    assert code == 0 and err.strip().endswith(f"detector on every 5th frame, at most {CPU_PROFILE.max_persons} persons")
    code, err = run_cli("--source", clip, "--keypoints", tmp_path / "k.jsonl", "--det-every", "1", "--max-persons", "2")
    assert code == 0 and err.strip().endswith("detector on every frame, at most 2 persons")


@pytest.mark.parametrize("n,words", [(1, "every frame"), (2, "every 2nd frame"), (3, "every 3rd frame"),
                                     (11, "every 11th frame"), (21, "every 21st frame")])
def test_the_interval_reads_as_words(n, words):
    from vitpose_live.engine.profiles import describe

    assert describe(n, None) == f"detector on {words}, all persons"


def test_the_web_app_starts_with_the_same_choice_as_the_command_line():
    page, cli = defaults_for("cpu"), resolve(profile_for("cpu"))
    assert (page.model, page.detector, page.detector_size, page.detector_gap_s) == (
        cli.model, cli.detector, cli.detector_size, cli.detector_gap_s)
    assert page.det_every == CPU_PROFILE.det_every and page.max_persons == CPU_PROFILE.max_persons
    gpu = defaults_for("cuda:0")
    assert gpu.model == DEFAULT_POSE_MODEL and gpu.det_every == 1 and gpu.max_persons == 20
    mine = defaults_for("cpu", "M", "D")
    assert (mine.model, mine.detector, mine.detector_size) == ("M", "D", None)


@pytest.mark.parametrize("value", ["0", "16", "big"])
def test_a_bad_detector_size_is_one_line(run_cli, tmp_path, value):
    from support.media import make_clip

    clip = make_clip(tmp_path / "clip.mp4", frames=2)
    code, err = run_cli("--source", clip, "--keypoints", tmp_path / "k.jsonl", "--detector-size", value)
    assert code == 2 and "--detector-size must be auto or a whole number of pixels" in err


def test_the_detector_size_reaches_the_detector_from_the_cli_and_the_web_app(pose_dir, detector_dir):
    from vitpose_live.engine.recipe import load_models
    from vitpose_live.apps.web.state import ModelCache

    args = parse_request(["--source", "x.mp4", "--device", "cpu", "--model", pose_dir,
                                      "--detector", detector_dir, "--detector-size", "160"])
    _, detector = load_models(engine_options(args, live=True).models)
    assert detector.resize.output_size(480, 640) == (160, 160)
    _, shared = ModelCache(detector_dir, "cpu", detector_size=192).get(pose_dir)
    assert shared.resize.output_size(480, 640) == (192, 192)

"""Keypoints as CSV and COCO results: the sinks alone, converted from JSON lines, and from the CLI."""

import csv
import json

import numpy as np
import pytest
from support.media import make_clip

from vitpose_live.outputs.keypoints import KeypointsCocoSink, KeypointsCsvSink, convert_keypoints, csv_columns, open_keypoints_sink
from vitpose_live.outputs.keypoints import KeypointsJsonlSink
from vitpose_live.outputs.paths import SinkError
from vitpose_live.outputs.records import read_keypoints_jsonl
from vitpose_live.skeletons import COCO
from vitpose_live.types import Poses

HEADER = {"model": "tiny", "keypoint_names": list(COCO.keypoint_names), "source": "clip.mp4"}


def poses(persons: int, *, shift: float = 0.0, tracked: bool = False) -> Poses:
    rng = np.random.default_rng(persons)
    keypoints = rng.uniform(10, 90, (persons, 17, 2)).astype(np.float32) + shift
    boxes = np.concatenate([keypoints.min(axis=1), keypoints.max(axis=1)], axis=1)
    return Poses(keypoints, rng.uniform(0.1, 1, (persons, 17)), boxes, np.linspace(0.9, 0.5, persons),
                 track_ids=np.arange(persons) + 7 if tracked else None)


def write_frames(sink, frames):
    with sink:
        for index, frame_poses in enumerate(frames):
            sink.write(index, index / 30, frame_poses)


def test_the_csv_has_named_columns_and_one_row_per_person_per_frame(tmp_path):
    write_frames(KeypointsCsvSink(tmp_path / "k.csv", header=HEADER), [poses(2, tracked=True), poses(0), poses(1)])
    with open(tmp_path / "k.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0])[:9] == ["frame", "time", "person", "track_id", "x1", "y1", "x2", "y2", "box_score"]
    assert list(rows[0]) == csv_columns(COCO.keypoint_names) and "left_ankle_score" in rows[0]
    assert [(r["frame"], r["person"], r["track_id"]) for r in rows] == [("0", "0", "7"), ("0", "1", "8"), ("2", "0", "")]
    expected = poses(2, tracked=True)
    assert float(rows[1]["nose_x"]) == pytest.approx(expected.keypoints[1, 0, 0], abs=5e-3)
    assert float(rows[1]["right_ankle_score"]) == pytest.approx(expected.scores[1, 16], abs=5e-5)
    assert float(rows[2]["time"]) == pytest.approx(2 / 30, abs=1e-4)


def test_a_coco_results_file_loads_in_pycocotools_and_scores_perfectly_against_itself(tmp_path):
    coco = pytest.importorskip("pycocotools.coco")
    cocoeval = pytest.importorskip("pycocotools.cocoeval")
    frames = [poses(2, tracked=True), poses(0), poses(3, shift=5.0, tracked=True)]
    write_frames(KeypointsCocoSink(tmp_path / "k.json", header=HEADER), frames)
    results = json.loads((tmp_path / "k.json").read_text())
    assert [r["image_id"] for r in results] == [0, 0, 2, 2, 2] and {r["category_id"] for r in results} == {1}
    first = results[0]
    assert len(first["keypoints"]) == 3 * 17 and first["track_id"] == 7
    x1, y1, x2, y2 = frames[0].boxes[0]
    assert first["bbox"] == pytest.approx([x1, y1, x2 - x1, y2 - y1], abs=0.02)
    assert first["score"] == pytest.approx(0.9)
    truth = coco.COCO()
    truth.dataset = {
        "images": [{"id": i, "width": 100, "height": 100} for i in range(3)],
        "categories": [{"id": 1, "name": "person", "keypoints": list(COCO.keypoint_names), "skeleton": []}],
        "annotations": [{**r, "id": n + 1, "iscrowd": 0, "num_keypoints": 17, "area": r["bbox"][2] * r["bbox"][3]}
                        for n, r in enumerate(results)],
    }
    truth.createIndex()
    loaded = truth.loadRes(str(tmp_path / "k.json"))
    assert len(loaded.getAnnIds()) == 5 and loaded.getImgIds() == [0, 1, 2]
    evaluation = cocoeval.COCOeval(truth, loaded, "keypoints")
    evaluation.evaluate()
    evaluation.accumulate()
    evaluation.summarize()
    assert evaluation.stats[0] == pytest.approx(1.0)  # OKS AP of the results against themselves


@pytest.mark.parametrize("suffix", [".csv", ".json"])
def test_converting_json_lines_gives_the_same_file_as_writing_that_format(tmp_path, suffix):
    frames = [poses(2, tracked=True), poses(0), poses(1)]
    write_frames(KeypointsJsonlSink(tmp_path / "k.jsonl", header=HEADER), frames)
    write_frames(open_keypoints_sink(tmp_path / f"direct{suffix}", HEADER), frames)
    convert_keypoints(tmp_path / "k.jsonl", tmp_path / f"converted{suffix}")
    assert (tmp_path / f"converted{suffix}").read_text() == (tmp_path / f"direct{suffix}").read_text()


@pytest.mark.parametrize("name", ["k.txt", "k", "k.xml"])
def test_a_keypoints_file_name_without_a_known_extension_is_refused(tmp_path, name):
    with pytest.raises(SinkError, match=r"\.jsonl, \.csv or \.json"):
        open_keypoints_sink(tmp_path / name, HEADER)


def test_an_aborted_export_leaves_no_file(tmp_path):
    for name in ("k.csv", "k.json"):
        sink = open_keypoints_sink(tmp_path / name, HEADER)
        sink.write(0, 0.0, poses(1))
        sink.abort()
        assert not (tmp_path / name).exists()


def test_the_single_file_cli_writes_csv_and_coco_with_the_numbers_of_its_json_lines(run_cli, tmp_path):
    clip = make_clip(tmp_path / "in.mp4", width=96, height=72, frames=5, audio=False)
    for name in ("k.jsonl", "k.csv", "k.json"):
        code, err = run_cli("--source", clip, "--keypoints", tmp_path / name, "--max-persons", 2)
        assert code == 0, err
    _, frames = read_keypoints_jsonl(tmp_path / "k.jsonl")
    with open(tmp_path / "k.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    results = json.loads((tmp_path / "k.json").read_text())
    persons = [(f["frame"], p) for f in frames for p in f["persons"]]
    assert len(rows) == len(results) == len(persons) > 0
    for (frame, person), row, result in zip(persons, rows, results):
        assert int(row["frame"]) == result["image_id"] == frame
        assert float(row["nose_x"]) == result["keypoints"][0] == person["keypoints"][0][0]
        assert result["keypoints"][3 * 16 + 2] == person["keypoints"][16][2]


def test_an_unknown_keypoints_extension_is_one_line_before_any_work(run_cli, tmp_path):
    clip = make_clip(tmp_path / "in.mp4", width=96, height=72, frames=3, audio=False)
    code, err = run_cli("--source", clip, "--keypoints", tmp_path / "k.txt")
    assert code == 2 and err.count("\n") == 1 and ".jsonl, .csv or .json" in err and "Traceback" not in err
    assert not (tmp_path / "k.txt").exists()


def test_persons_filled_in_are_marked_in_jsonl_csv_and_coco_and_only_they(tmp_path):
    """An offline run's header lists ``interpolated`` in ``person_fields``; a filled-in person
    carries ``"interpolated": true`` (JSON lines, COCO), 1 in the CSV's ``interpolated`` column."""
    header = {**HEADER, "person_fields": ["interpolated"]}
    marks = [np.array([False, True]), np.array([], bool), np.array([True])]
    frames = [poses(2, tracked=True), poses(0), poses(1, tracked=True)]
    for name in ("k.jsonl", "k.csv", "k.json"):
        with open_keypoints_sink(tmp_path / name, header) as sink:
            for index, (frame_poses, marked) in enumerate(zip(frames, marks)):
                sink.write(index, index / 30, frame_poses, interpolated=marked)

    _, records = read_keypoints_jsonl(tmp_path / "k.jsonl")
    assert [[p.get("interpolated") for p in r["persons"]] for r in records] == [[None, True], [], [True]]
    with open(tmp_path / "k.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == csv_columns(COCO.keypoint_names, person_fields=["interpolated"]) and list(rows[0])[-1] == "interpolated"
    assert [r["interpolated"] for r in rows] == ["0", "1", "1"]
    results = json.loads((tmp_path / "k.json").read_text())
    assert [r.get("interpolated") for r in results] == [None, True, True]
    convert_keypoints(tmp_path / "k.jsonl", tmp_path / "converted.csv")  # the header carries the column over
    assert (tmp_path / "converted.csv").read_text() == (tmp_path / "k.csv").read_text()


ANGLES = ("left_elbow", "right_knee")


def test_a_record_gets_angles_per_person_and_followed_only_when_given():
    from vitpose_live.outputs.records import frame_record

    two = poses(2, tracked=True)
    plain = frame_record(3, 0.1, two)
    assert set(plain) == {"frame", "time", "persons"} and "angles" not in plain["persons"][0]
    record = frame_record(3, 0.1, two, angles={"left_elbow": np.array([90.04, np.nan]), "right_knee": np.array([180.0, 12.36])},
                          followed=8)
    assert [p["angles"] for p in record["persons"]] == [{"left_elbow": 90.0, "right_knee": 180.0},
                                                        {"left_elbow": None, "right_knee": 12.4}]
    assert record["followed"] == 8 and frame_record(3, 0.1, two, followed=None)["followed"] is None


def test_the_csv_has_an_angle_column_per_angle_of_the_header_and_empty_cells_for_unknown_ones(tmp_path):
    header = {**HEADER, "angle_names": list(ANGLES)}
    with KeypointsCsvSink(tmp_path / "k.csv", header=header) as sink:
        sink.write(0, 0.0, poses(2, tracked=True), angles={"left_elbow": np.array([45.0, np.nan]),
                                                            "right_knee": np.array([170.0, 90.0])})
    with open(tmp_path / "k.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0])[-2:] == ["angle_left_elbow", "angle_right_knee"]
    assert [(r["angle_left_elbow"], r["angle_right_knee"]) for r in rows] == [("45.0", "170.0"), ("", "90.0")]
    write_frames(KeypointsCsvSink(tmp_path / "plain.csv", header=HEADER), [poses(1)])
    assert not any(c.startswith("angle_") for c in (tmp_path / "plain.csv").read_text().splitlines()[0].split(","))


def test_converting_json_lines_with_angles_keeps_them_in_the_csv(tmp_path):
    header = {**HEADER, "angle_names": list(ANGLES)}
    angles = {"left_elbow": np.array([33.3]), "right_knee": np.array([np.nan])}
    with KeypointsJsonlSink(tmp_path / "k.jsonl", header=header) as sink:
        sink.write(0, 0.0, poses(1), angles=angles, followed=None)
    convert_keypoints(tmp_path / "k.jsonl", tmp_path / "k.csv")
    with open(tmp_path / "k.csv", newline="") as f:
        row = next(csv.DictReader(f))
    assert (row["angle_left_elbow"], row["angle_right_knee"]) == ("33.3", "")

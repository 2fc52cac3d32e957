"""One frame's poses as the JSON-ready record every keypoints format writes, the header of a
keypoints file, and reading a JSON lines file back."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import numpy as np

from ..types import Poses


def rounded(array: np.ndarray, decimals: int) -> list:
    """``array`` as nested lists of floats rounded to ``decimals``; NaN and inf become ``None``."""
    values = np.round(np.asarray(array, dtype=np.float64), decimals)
    if np.isfinite(values).all():
        return values.tolist()
    return np.where(np.isfinite(values), values, None).tolist()


def json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (Path, Fraction)):
        return str(value) if isinstance(value, Path) else float(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def keypoints_header(engine, source_info: dict, angle_names=()) -> dict:
    """The header of a keypoints file: models, keypoint names and edges, the names of the joint
    angles each person gets (when there are any), and the source's ``source``, ``width``,
    ``height`` and ``fps``."""
    header = {
        "model": engine.pose.name,
        "detector": engine.detector.name,
        "keypoint_names": list(engine.skeleton.keypoint_names),
        "edges": [list(edge) for edge in engine.skeleton.edges],
    }
    if angle_names:
        header["angle_names"] = list(angle_names)
    return {**header, **source_info}


NOT_FOLLOWING = object()  # frame_record's ``followed`` when nobody is followed in this run


def frame_record(frame_index: int, time: float | None, poses: Poses, *, interpolated=None, angles=None,
                 followed: int | None | object = NOT_FOLLOWING) -> dict:
    """One frame's poses as the JSON-ready record of a keypoints line. Extras, each only when
    given: ``interpolated`` ((N,) bool, offline runs) -> ``"interpolated": true`` on the persons
    filled in across a gap (only they: a person seen has no such key); ``angles`` (angle name ->
    (N,) degrees, NaN unknown) -> an ``"angles"`` object per person (degrees to 1 decimal, None
    unknown); ``followed`` (a track id, or None when the followed person is not in the frame) ->
    the frame's ``"followed"``."""
    xy = rounded(poses.keypoints, 2)
    scores = rounded(poses.scores, 4)
    boxes = rounded(poses.boxes, 2)
    box_scores = rounded(poses.box_scores, 4)
    names = list(angles or ())
    degrees = rounded(np.reshape([angles[name] for name in names], (len(names), len(poses))).T, 1) if names else None
    persons = []
    for n in range(len(poses)):
        person = {
            "box": boxes[n],
            "score": box_scores[n],
            "keypoints": [[x, y, s] for (x, y), s in zip(xy[n], scores[n])],
        }
        if poses.track_ids is not None:
            person["track_id"] = int(poses.track_ids[n])
        if interpolated is not None and interpolated[n]:
            person["interpolated"] = True
        if degrees is not None:
            person["angles"] = dict(zip(names, degrees[n], strict=True))
        persons.append(person)
    seconds = None if time is None else round(float(time), 4)
    record = {"frame": int(frame_index), "time": seconds, "persons": persons}
    if followed is not NOT_FOLLOWING:
        record["followed"] = None if followed is None else int(followed)
    return record


def read_keypoints_jsonl(path: str | Path) -> tuple[dict, list[dict]]:
    """The header and the frame records of a file written by :class:`~vitpose_live.outputs.keypoints.KeypointsJsonlSink`."""
    with open(path, encoding="utf-8") as f:
        records = [json.loads(line) for line in f if line.strip()]
    if not records or records[0].get("type") != "header":
        raise ValueError(f"'{path}' is not a keypoints file (its first line is not a header)")
    header = {k: v for k, v in records[0].items() if k != "type"}
    return header, records[1:]

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


def keypoints_header(engine, source_info: dict) -> dict:
    """The header of a keypoints file: models, keypoint names and edges, and the source's
    ``source``, ``width``, ``height`` and ``fps``."""
    return {
        "model": engine.pose.name,
        "detector": engine.detector.name,
        "keypoint_names": list(engine.skeleton.keypoint_names),
        "edges": [list(edge) for edge in engine.skeleton.edges],
        **source_info,
    }


def frame_record(frame_index: int, time: float | None, poses: Poses, *, interpolated=None) -> dict:
    """One frame's poses as the JSON-ready record of a keypoints line. ``interpolated`` ((N,)
    bool, offline runs): the persons filled in across a gap get ``"interpolated": true`` (only
    they: a person seen has no such key)."""
    xy = rounded(poses.keypoints, 2)
    scores = rounded(poses.scores, 4)
    boxes = rounded(poses.boxes, 2)
    box_scores = rounded(poses.box_scores, 4)
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
        persons.append(person)
    seconds = None if time is None else round(float(time), 4)
    return {"frame": int(frame_index), "time": seconds, "persons": persons}


def read_keypoints_jsonl(path: str | Path) -> tuple[dict, list[dict]]:
    """The header and the frame records of a file written by :class:`~vitpose_live.outputs.keypoints.KeypointsJsonlSink`."""
    with open(path, encoding="utf-8") as f:
        records = [json.loads(line) for line in f if line.strip()]
    if not records or records[0].get("type") != "header":
        raise ValueError(f"'{path}' is not a keypoints file (its first line is not a header)")
    header = {k: v for k, v in records[0].items() if k != "type"}
    return header, records[1:]

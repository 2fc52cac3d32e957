"""Keypoints in the formats other tools read: JSON lines (ours), CSV (spreadsheets, pandas) and
COCO keypoint results (``pycocotools``' ``COCO.loadRes``, evaluation scripts).

Every sink has the shape of :class:`~vitpose_live.outputs.text_sink.TextSink`:
``write(frame_index, time, poses)``, ``close()``, ``abort()`` (close and delete). Each one writes
the rounded record of :func:`~vitpose_live.outputs.records.frame_record`, so the three formats hold the same
numbers, and a JSON lines file converts to the others exactly (:func:`convert_keypoints`).
"""

from __future__ import annotations

import csv
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

from .paths import SinkError, keypoints_format
from .records import json_default
from .text_sink import TextSink

class KeypointsJsonlSink(TextSink):
    """Poses as JSON lines: a ``{"type": "header", ...}`` line, then one line per frame::

        {"frame": 0, "time": 0.0, "persons": [{"box": [x1, y1, x2, y2], "score": s,
         "keypoints": [[x, y, score], ...], "track_id": 3}]}

    Pixels are rounded to 2 decimals, scores and times to 4; ``track_id`` is there only when
    the poses are tracked, ``"interpolated": true`` only on persons an offline run filled in
    across a gap (the header's ``person_fields`` then lists it). The file is flushed every ``flush_every`` frames and on close.
    """

    def __init__(self, path: str | Path, *, header: dict, flush_every: int = 30) -> None:
        super().__init__(path)
        self._flush_every = max(1, int(flush_every))
        try:
            self._line({"type": "header", **header})
            self._guarded(self._file.flush)
        except SinkError:
            self.abort()
            raise

    def _line(self, record: dict) -> None:
        self._guarded(self._file.write, json.dumps(record, default=json_default, allow_nan=False) + "\n")

    def write_record(self, record: dict) -> None:
        self._line(record)
        self.frames_written += 1
        if self.frames_written % self._flush_every == 0:
            self._guarded(self._file.flush)


def open_keypoints_sink(path: str | Path, header: dict):
    """The keypoints sink for ``path``'s extension: .jsonl, .csv or .json (COCO results)."""
    sink = {"jsonl": KeypointsJsonlSink, "csv": KeypointsCsvSink, "coco": KeypointsCocoSink}[keypoints_format(path)]
    return sink(path, header=header)


def csv_columns(keypoint_names, angle_names=(), person_fields=()) -> list[str]:
    """frame, time, person, track_id, x1, y1, x2, y2, box_score, then ``<name>_x``, ``<name>_y``,
    ``<name>_score`` per keypoint, then ``angle_<name>`` per joint angle (the header's
    ``angle_names``), then one column per optional person field the file carries (its header's
    ``person_fields``: ``interpolated``). The web app's CSV has the same columns."""
    columns = ["frame", "time", "person", "track_id", "x1", "y1", "x2", "y2", "box_score"]
    columns += [f"{name}_{part}" for name in keypoint_names for part in ("x", "y", "score")]
    return columns + [f"angle_{name}" for name in angle_names] + list(person_fields)


class KeypointsCsvSink(TextSink):
    """One row per person per frame under named columns (:func:`csv_columns`); ``track_id`` is
    empty when the poses are not tracked, a missing value (NaN, an unknown angle) an empty cell."""

    def __init__(self, path: str | Path, *, header: dict) -> None:
        super().__init__(path, newline="")
        self._writer = csv.writer(self._file)
        self._angles = tuple(header.get("angle_names", ()))
        self._fields = tuple(header.get("person_fields", ()))
        self._guarded(self._writer.writerow, csv_columns(header["keypoint_names"], self._angles, self._fields))

    def write_record(self, record: dict) -> None:
        rows = []
        for n, person in enumerate(record["persons"]):
            row = [record["frame"], record["time"], n, person.get("track_id"), *person["box"], person["score"]]
            row += [value for keypoint in person["keypoints"] for value in keypoint]
            angles = person.get("angles", {})
            row += [angles.get(name) for name in self._angles]
            row += [int(bool(person.get(name))) for name in self._fields]  # a flag: 1 or 0
            rows.append(["" if value is None else value for value in row])
        self._guarded(self._writer.writerows, rows)
        self.frames_written += 1


def coco_results(record: dict) -> list[dict]:
    """One frame's persons as COCO keypoint results: ``image_id`` the frame index,
    ``category_id`` 1 (person), ``keypoints`` [x, y, v, ...] with the keypoint score as v,
    ``score`` the person's detection score, ``bbox`` [x, y, width, height], and ``track_id``
    when tracked; ``interpolated`` true on persons filled in across a gap (offline runs)."""
    results = []
    for person in record["persons"]:
        x1, y1, x2, y2 = (0.0 if v is None else v for v in person["box"])
        result = {
            "image_id": record["frame"],
            "category_id": 1,
            "keypoints": [0.0 if v is None else v for keypoint in person["keypoints"] for v in keypoint],
            "score": 0.0 if person["score"] is None else person["score"],
            "bbox": [x1, y1, round(x2 - x1, 2), round(y2 - y1, 2)],
        }
        if "track_id" in person:
            result["track_id"] = person["track_id"]
        if person.get("interpolated"):
            result["interpolated"] = True
        results.append(result)
    return results


class KeypointsCocoSink(TextSink):
    """A COCO results file: one JSON array of :func:`coco_results`, written as frames come (one
    result per line), so memory does not grow with the video's length."""

    def __init__(self, path: str | Path, *, header: dict) -> None:
        super().__init__(path)
        self._results = 0
        self._guarded(self._file.write, "[")

    def write_record(self, record: dict) -> None:
        for result in coco_results(record):
            separator = ",\n" if self._results else "\n"
            self._guarded(self._file.write, separator + json.dumps(result, allow_nan=False))
            self._results += 1
        self.frames_written += 1

    def _finish(self) -> None:
        self._file.write("\n]\n")


def _jsonl_records(path: Path) -> Iterator[dict]:
    with open(path, encoding="utf-8") as lines:
        for line in lines:
            if line.strip():
                yield json.loads(line)


def convert_keypoints(jsonl: str | Path, target: str | Path) -> None:
    """Write the keypoints of a JSON lines file (:class:`KeypointsJsonlSink`) to ``target`` in the
    format its extension names; a failed ``target`` is deleted."""
    if keypoints_format(target) == "jsonl":
        shutil.copyfile(jsonl, target)
        return
    records = _jsonl_records(Path(jsonl))
    header = next(records, None)
    if header is None or header.get("type") != "header":
        raise SinkError(f"'{jsonl}' is not a keypoints file (its first line is not a header)")
    with open_keypoints_sink(target, header) as sink:
        for record in records:
            sink.write_record(record)

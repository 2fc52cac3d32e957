"""Keypoints as CSV for the Video tab (kept apart so that a shared CSV sink can replace it)."""

from __future__ import annotations

import csv
from pathlib import Path

from ..sinks import frame_record
from ..types import Poses


class KeypointsCsvWriter:
    """Keypoints as CSV: one row per person per frame — frame, time, person, track_id, box
    (x1, y1, x2, y2), box_score, then ``<name>_x``, ``<name>_y``, ``<name>_score`` per keypoint.
    A record sink of :func:`vitpose_live.run.run` (write / close / abort)."""

    def __init__(self, path: str | Path, keypoint_names: tuple[str, ...]) -> None:
        self.path = Path(path)
        self._file = open(self.path, "w", newline="", encoding="utf-8")
        self._writer = csv.writer(self._file)
        columns = ["frame", "time", "person", "track_id", "x1", "y1", "x2", "y2", "box_score"]
        columns += [f"{name}_{part}" for name in keypoint_names for part in ("x", "y", "score")]
        self._writer.writerow(columns)

    def write(self, frame_index: int, time: float | None, poses: Poses) -> None:
        record = frame_record(frame_index, time, poses)
        for n, person in enumerate(record["persons"]):
            row = [record["frame"], record["time"], n, person.get("track_id", ""), *person["box"], person["score"]]
            row += [value for keypoint in person["keypoints"] for value in keypoint]
            self._writer.writerow(["" if value is None else value for value in row])

    def close(self) -> None:
        self._file.close()

    def abort(self) -> None:
        self._file.close()
        self.path.unlink(missing_ok=True)

    def __enter__(self) -> KeypointsCsvWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

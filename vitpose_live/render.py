"""Drawing poses and a small heads-up display onto RGB frames.

Drawing sits on the hot path of a live app, so the work per frame is a handful of numpy operations
and one ``cv2.polylines`` call per colour, whatever the number of persons:

* the edges of one colour are one call with a list of two-point polylines;
* the keypoints of one colour are one call with a list of one-point *closed* polylines whose
  thickness is the disc's diameter: OpenCV draws a thick line's round end cap once for it, which
  is a filled (anti-aliased) disc, the same pixels as ``cv2.circle(..., -1)``;
* coordinates are fixed point (``shift``), so anti-aliased strokes sit at sub-pixel positions.

``bench/bench_render.py`` measures this against a call per point and against supervision.
Colours are RGB, because frames are RGB.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from .defaults import KPT_THRESHOLD
from .skeletons import COCO_KEYPOINTS
from .types import Poses

Color = tuple[int, int, int]

# Limb groups of the COCO skeleton, picked to stay apart from each other and readable on video.
LEFT: Color = (60, 220, 90)  # green
RIGHT: Color = (255, 150, 30)  # orange
TORSO: Color = (70, 160, 255)  # blue
FACE: Color = (240, 90, 230)  # magenta
# Keypoints of other skeletons (by index) and track ids (by id).
PALETTE: tuple[Color, ...] = (
    (255, 80, 80), (80, 200, 255), (255, 210, 50), (120, 230, 90), (200, 110, 255),
    (255, 140, 30), (40, 220, 200), (255, 100, 190), (170, 200, 60), (120, 140, 255),
)  # fmt: skip
BOX: Color = (235, 235, 235)

_SHIFT = 4  # fixed-point bits for sub-pixel drawing
_ONE = 1 << _SHIFT
_FAR = float(1 << 20)  # coordinates beyond a million pixels are garbage, not geometry
_FACE_PARTS = ("nose", "left_eye", "right_eye", "left_ear", "right_ear")
_TORSO_PARTS = ("left_shoulder", "right_shoulder", "left_hip", "right_hip")


@dataclass(frozen=True)
class _Plan:
    """A skeleton's edges and keypoints sorted by colour, so that each colour is one run."""

    ends: np.ndarray  # (E, 2) keypoint indices of the edges' ends, edges sorted by colour
    edge_runs: tuple[tuple[Color, int], ...]  # (colour, one past the run's last edge)
    points: np.ndarray  # (K,) keypoint indices sorted by colour
    point_runs: tuple[tuple[Color, int], ...]


def _runs(colors: list[Color]) -> tuple[list[int], tuple[tuple[Color, int], ...]]:
    """The order that puts equal colours together, and each colour's run (colour, end)."""
    groups: dict[Color, list[int]] = {}
    for index, color in enumerate(colors):
        groups.setdefault(color, []).append(index)
    order = [index for members in groups.values() for index in members]
    ends = np.cumsum([len(members) for members in groups.values()], dtype=int).tolist()
    return order, tuple(zip(groups, ends, strict=True))


@lru_cache(maxsize=16)
def _plan(names: tuple[str, ...], edges: tuple[tuple[int, int], ...]) -> _Plan:
    k = len(names)
    if any(not (0 <= a < k and 0 <= b < k) for a, b in edges):
        raise ValueError(f"edges {edges} reach outside the {k} keypoints")
    if names == COCO_KEYPOINTS:

        def side(name: str) -> Color:
            return FACE if name in _FACE_PARTS else LEFT if name.startswith("left") else RIGHT

        point_colors = [side(name) for name in names]
        edge_colors = [
            FACE
            if names[a] in _FACE_PARTS or names[b] in _FACE_PARTS
            else TORSO
            if names[a] in _TORSO_PARTS and names[b] in _TORSO_PARTS
            else side(names[a])
            for a, b in edges
        ]
    else:
        point_colors = [PALETTE[i % len(PALETTE)] for i in range(k)]
        edge_colors = [PALETTE[a % len(PALETTE)] for a, _ in edges]
    edge_order, edge_runs = _runs(edge_colors)
    point_order, point_runs = _runs(point_colors)
    ends = np.asarray(edges, dtype=np.intp).reshape(-1, 2)[edge_order]
    return _Plan(ends, edge_runs, np.asarray(point_order, np.intp), point_runs)


def _in_runs(items: np.ndarray, chosen: np.ndarray, runs: tuple[tuple[Color, int], ...]):
    """``items[chosen]`` cut by colour: ``(colour, items)`` for each run with something chosen.

    ``items`` and ``chosen`` are indexed (run member, person, ...), so one boolean gather keeps
    every run contiguous.
    """
    picked = items[chosen]
    stops = np.cumsum(np.count_nonzero(chosen, axis=1)).tolist()
    start = 0
    for color, end in runs:
        stop = stops[end - 1]
        if stop > start:
            yield color, picked[start:stop]
        start = stop


def _dimmed(color: Color, dim: bool) -> Color:
    """``color`` as the persons not followed are drawn: a dark grey of a third of its strength."""
    if not dim:
        return color
    grey = sum(color) / 3
    return tuple(int(round(0.35 * (0.4 * c + 0.6 * grey))) + 40 for c in color)


def _subset(poses: Poses, keep: np.ndarray) -> Poses:
    ids = None if poses.track_ids is None else poses.track_ids[keep]
    return poses.replace(keypoints=poses.keypoints[keep], scores=poses.scores[keep], boxes=poses.boxes[keep],
                         box_scores=poses.box_scores[keep], track_ids=ids)


def _check(scene: np.ndarray) -> None:
    if scene.ndim != 3 or scene.shape[2] != 3 or scene.dtype != np.uint8:
        raise ValueError(f"scene must be an HxWx3 uint8 image, got {scene.shape} {scene.dtype}")
    if scene.strides[1:] != (3, 1) or scene.strides[0] <= 0:
        # OpenCV draws only into memory laid out as rows of pixels (a crop is fine, a flip is not).
        raise ValueError(
            "scene must have contiguous pixels to be drawn in place: pass np.ascontiguousarray(scene)"
        )


def _line_type(antialias: bool) -> int:
    return cv2.LINE_AA if antialias else cv2.LINE_8


def default_sizes(scene: np.ndarray) -> tuple[int, int]:
    """``(thickness, radius)`` for the image's size: lines about 3.5 px wide at 1080p, 1.5 px at 480p.

    OpenCV draws a line of thickness ``t > 1`` about ``2 * ceil(t / 2) + 1.4`` px wide (anti-aliased),
    so only 1 and even thicknesses are worth asking for.
    """
    short = min(scene.shape[:2])
    width = short / 300  # wanted, in pixels
    thickness = 1 if width < 2.4 else max(2, 2 * round((width - 1.4) / 2))
    return thickness, max(2, round(short / 270))


def _subset(poses: Poses, chosen: np.ndarray) -> Poses:
    """The persons of ``poses`` where ``chosen`` (N,) is true (``poses`` itself when all are)."""
    if chosen.all():
        return poses
    ids = None if poses.track_ids is None else poses.track_ids[chosen]
    return poses.replace(keypoints=poses.keypoints[chosen], scores=poses.scores[chosen], boxes=poses.boxes[chosen],
                         box_scores=poses.box_scores[chosen], track_ids=ids)  # fmt: skip


def _dimmed(color: Color, dim: bool) -> Color:
    """Half as bright when ``dim`` (an interpolated person, or not the one followed)."""
    return tuple(c // 2 for c in color) if dim else color


@dataclass(eq=False)
class PoseAnnotator:
    """Draws skeletons (edges and keypoints), and optionally boxes and track ids.

    Keypoints are drawn when their score is above ``kpt_threshold``, edges when both ends are;
    non-finite or absurdly far coordinates are skipped. ``radius`` and ``thickness`` default to
    sizes scaled to each image. The COCO skeleton gets a colour per limb group (left, right,
    torso, face); other skeletons a colour per keypoint from :data:`PALETTE`.
    """

    kpt_threshold: float = KPT_THRESHOLD
    radius: int | None = None
    thickness: int | None = None
    show_boxes: bool = False
    show_ids: bool = True
    show_keypoints: bool = True
    show_edges: bool = True
    antialias: bool = True
    hide_others: bool = False  # with a followed person: leave the others out instead of dimming them

    def annotate(self, scene: np.ndarray, poses: Poses, kpt_threshold: float | None = None, *,
                 interpolated: np.ndarray | None = None, followed: int | None = None) -> np.ndarray:
        """Draw ``poses`` onto ``scene`` (HxWx3 uint8 RGB) in place and return it; keypoints above
        ``kpt_threshold`` (None: this annotator's own), so drawing can follow the engine's.

        ``interpolated`` ((N,) bool, offline runs): persons filled in across a gap, not seen, are
        drawn dimmed, in half-bright colours with thin lines and small points. ``followed``: the
        track id of the person followed in this run (None: nobody is); they are drawn in full and
        the others dimmed, or left out with ``hide_others``; an id that is not in this frame dims
        (or hides) everybody. Dimmed persons are drawn under the others."""
        kpt_threshold = self.kpt_threshold if kpt_threshold is None else kpt_threshold
        if len(poses) == 0:
            return scene
        _check(scene)
        filled = np.zeros(len(poses), bool) if interpolated is None else np.asarray(interpolated, bool)
        other = np.zeros(len(poses), bool)
        if followed is not None and poses.track_ids is not None:
            other = poses.track_ids != followed
            if self.hide_others:
                poses, filled, other = _subset(poses, ~other), filled[~other], other[~other]
        thickness, radius = default_sizes(scene)
        thickness = self.thickness or thickness
        radius = self.radius or max(radius, thickness // 2 + 2)
        thin = (1, max(2, radius // 2))
        for chosen, sizes, dim in ((other & ~filled, (thickness, radius), True), (filled, thin, True),
                                   (~other & ~filled, (thickness, radius), False)):  # fmt: skip
            if chosen.any():
                self._draw(scene, _subset(poses, chosen), kpt_threshold, sizes, dim)
        return scene

    def _draw(self, scene: np.ndarray, poses: Poses, kpt_threshold: float, sizes: tuple[int, int],
              dim: bool) -> None:
        """Boxes, edges, keypoints and ids of ``poses``, one ``cv2.polylines`` call per colour."""
        thickness, radius = sizes
        line = _line_type(self.antialias)
        if self.show_boxes:
            self._boxes(scene, poses, max(1, thickness // 2), line, dim)
        if self.show_edges or self.show_keypoints:
            plan = _plan(poses.keypoint_names, poses.edges)
            kp = poses.keypoints.transpose(1, 0, 2)  # (K, N, 2): keypoint-major, so runs stay together
            # abs(nan) < x is False, so this also drops NaN and inf.
            ok = (poses.scores.T > kpt_threshold) & (np.abs(kp) < _FAR).all(-1)
            fixed = np.rint(np.where(ok[..., None], kp, 0) * _ONE).astype(np.int32)
            if self.show_edges and len(plan.ends):
                segments = fixed[plan.ends].transpose(0, 2, 1, 3)  # (E, N, 2 ends, 2)
                both = ok[plan.ends].all(1)  # (E, N)
                for color, chosen in _in_runs(segments, both, plan.edge_runs):
                    cv2.polylines(scene, chosen, False, _dimmed(color, dim), thickness, line, _SHIFT)
            if self.show_keypoints:
                points = fixed[plan.points][:, :, None]  # (K, N, 1, 2): one-point closed polylines
                for color, chosen in _in_runs(points, ok[plan.points], plan.point_runs):
                    cv2.polylines(scene, chosen, True, _dimmed(color, dim), 2 * radius, line, _SHIFT)
        if self.show_ids and poses.track_ids is not None:
            self._ids(scene, poses.boxes, poses.track_ids, dim)

    def _boxes(self, scene: np.ndarray, poses: Poses, thickness: int, line: int, dim: bool = False) -> None:
        ok = (np.abs(poses.boxes) < _FAR).all(-1)
        x1, y1, x2, y2 = np.rint(poses.boxes[ok] * _ONE).astype(np.int32).T
        corners = np.stack([np.stack(c, -1) for c in ((x1, y1), (x2, y1), (x2, y2), (x1, y2))], 1)
        if poses.track_ids is None or not self.show_ids:
            colors = [BOX] * len(corners)
        else:
            colors = [PALETTE[i % len(PALETTE)] for i in poses.track_ids[ok].tolist()]
        order, runs = _runs(colors)
        start = 0
        for color, end in runs:
            cv2.polylines(scene, corners[order[start:end]], True, _dimmed(color, dim), thickness, line, _SHIFT)
            start = end

    @staticmethod
    def _ids(scene: np.ndarray, boxes: np.ndarray, ids: np.ndarray, dim: bool = False) -> None:
        h, w = scene.shape[:2]
        scale = max(0.4, min(h, w) / 1000)
        weight = max(1, round(2 * scale))
        for box, track_id in zip(boxes.tolist(), ids.tolist(), strict=True):
            if not all(abs(v) < _FAR for v in box[:2]):
                continue
            text = str(track_id)
            (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, weight)
            x = int(min(max(box[0], 0), w - tw))
            y = int(min(max(box[1] - base, th), h - base))
            color = _dimmed(PALETTE[track_id % len(PALETTE)], dim)
            cv2.putText(
                scene, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), weight + 2, cv2.LINE_AA
            )
            cv2.putText(scene, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, scale, color, weight, cv2.LINE_AA)


class HudAnnotator:
    """A few lines of white text on a semi-transparent dark box in a corner (fps, latency, persons).

    Only the box region is blended, so it costs next to nothing on a large frame.
    """

    POSITIONS = ("top_left", "top_right", "bottom_left", "bottom_right")

    def __init__(
        self,
        position: str = "top_left",
        font_scale: float | None = None,
        opacity: float = 0.6,
        text_color: Color = (255, 255, 255),
        background: Color = (0, 0, 0),
        enabled: bool = True,
    ) -> None:
        if position not in self.POSITIONS:
            raise ValueError(f"position must be one of {self.POSITIONS}, got {position!r}")
        self.position = position
        self.font_scale = font_scale
        self.opacity = opacity
        self.text_color = text_color
        self.background = background
        self.enabled = enabled  # the loop draws it only while enabled (a window's h key)

    def annotate(self, scene: np.ndarray, lines: list[str]) -> np.ndarray:
        """Draw ``lines`` onto ``scene`` in place and return it."""
        if not lines:
            return scene
        _check(scene)
        h, w = scene.shape[:2]
        scale = self.font_scale or max(0.4, min(h, w) / 1500)
        weight = 1 if scale < 0.8 else 2
        font = cv2.FONT_HERSHEY_SIMPLEX
        sizes = [cv2.getTextSize(text, font, scale, weight) for text in lines]
        step = max(th + base for (_, th), base in sizes) + 2
        pad = max(4, step // 3)
        box_w = min(w, max(tw for (tw, _), _ in sizes) + 2 * pad)
        box_h = min(h, step * len(lines) + 2 * pad)
        margin = pad
        x0 = margin if self.position.endswith("left") else max(0, w - margin - box_w)
        y0 = margin if self.position.startswith("top") else max(0, h - margin - box_h)
        roi = scene[y0 : y0 + box_h, x0 : x0 + box_w]
        roi[:] = cv2.addWeighted(roi, 1 - self.opacity, np.full_like(roi, self.background), self.opacity, 0)
        for i, (text, ((_, th), _)) in enumerate(zip(lines, sizes, strict=True)):
            y = y0 + pad + i * step + th
            cv2.putText(scene, text, (x0 + pad, y), font, scale, self.text_color, weight, cv2.LINE_AA)
        return scene

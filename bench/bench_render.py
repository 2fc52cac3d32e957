"""Benchmark: PoseAnnotator vs supervision's EdgeAnnotator + VertexAnnotator on a 1080p frame.

Also times other ways of drawing the same skeleton with OpenCV (a cv2 call per point and edge,
zero-length segments as discs) so the choice made in ``vitpose_live/render.py`` stays measured.

    python bench/bench_render.py [--frames 200]

Prints a table of median ms per frame and writes ``bench/out/render.json`` and an example frame
``bench/out/render_example.png``.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vitpose_live.render import _ONE, _SHIFT, HudAnnotator, PoseAnnotator, _plan, default_sizes
from vitpose_live.skeletons import COCO
from vitpose_live.types import Poses

OUT = Path(__file__).resolve().parent / "out"
HEIGHT, WIDTH = 1080, 1920
THRESHOLD = 0.3

# A standing person facing the camera (their left on the image's right), COCO order, in units of
# body height, origin between the hips.
_STANDING = np.array(
    [[0, -0.44], [0.02, -0.46], [-0.02, -0.46], [0.05, -0.44], [-0.05, -0.44],
     [0.11, -0.33], [-0.11, -0.33], [0.15, -0.16], [-0.15, -0.16], [0.17, -0.02], [-0.17, -0.02],
     [0.07, 0.0], [-0.07, 0.0], [0.08, 0.24], [-0.08, 0.24], [0.09, 0.48], [-0.09, 0.48]],
    np.float32,
)  # fmt: skip
# (joint, child joints) rotated together: shoulders swing arms, elbows forearms, hips legs, knees shins.
_LIMBS = (
    (5, (7, 9)),
    (6, (8, 10)),
    (7, (9,)),
    (8, (10,)),
    (11, (13, 15)),
    (12, (14, 16)),
    (13, (15,)),
    (14, (16,)),
)


def synthetic_poses(n: int, rng: np.random.Generator, width: int = WIDTH, height: int = HEIGHT) -> Poses:
    """``n`` random-but-plausible people: bent arms and legs, sizes and places across the frame,
    most keypoints confident and a few not."""
    people = []
    for _ in range(n):
        body = _STANDING.copy()
        for joint, children in _LIMBS:
            angle = rng.uniform(-1.0, 1.0) if joint in (5, 6, 7, 8) else rng.uniform(-0.25, 0.25)
            c, s = np.cos(angle), np.sin(angle)
            offsets = body[list(children)] - body[joint]
            body[list(children)] = body[joint] + offsets @ np.array([[c, s], [-s, c]], np.float32)
        size = rng.uniform(0.3, 0.8) * height
        centre = [
            rng.uniform(0.1, 0.9) * width,
            rng.uniform(0.1 + size / height / 2, 0.95 - size / height / 2) * height,
        ]
        people.append(body * size + centre + rng.normal(0, 0.005 * size, body.shape))
    keypoints = np.asarray(people, np.float32).reshape(n, 17, 2)
    scores = np.where(
        rng.random((n, 17)) < 0.85, rng.uniform(0.5, 1.0, (n, 17)), rng.uniform(0.0, 0.3, (n, 17))
    )
    boxes = np.concatenate([keypoints.min(1) - 20, keypoints.max(1) + 20], axis=1) if n else np.zeros((0, 4))
    return Poses(keypoints, scores, boxes, np.ones(n), track_ids=np.arange(1, n + 1))


def background(rng: np.random.Generator) -> np.ndarray:
    """A dim gradient with noise, a stand-in for a video frame."""
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float32)
    base = np.stack([40 + 60 * x / WIDTH, 50 + 40 * y / HEIGHT, 70 + 30 * (1 - x / WIDTH)], -1)
    return np.clip(base + rng.normal(0, 6, base.shape), 0, 255).astype(np.uint8)


# --- other techniques, same colours and sizes, for the record ------------------------------------


def _prepare(poses: Poses):
    """Masks, fixed-point keypoints (N, K, 2) and per-colour index groups, as render.py makes them."""
    ok = (poses.scores > THRESHOLD) & (np.abs(poses.keypoints) < 1e6).all(-1)
    fixed = np.rint(np.where(ok[..., None], poses.keypoints, 0) * _ONE).astype(np.int32)
    plan = _plan(poses.keypoint_names, poses.edges)
    edges, points, start = [], [], 0
    for color, end in plan.edge_runs:
        edges.append((color, plan.ends[start:end, 0], plan.ends[start:end, 1]))
        start = end
    start = 0
    for color, end in plan.point_runs:
        points.append((color, plan.points[start:end]))
        start = end
    return ok, fixed, edges, points


def per_call(scene: np.ndarray, poses: Poses, line: int = cv2.LINE_AA) -> np.ndarray:
    """One cv2.line per edge and one cv2.circle per keypoint (vectorised masks, Python loop)."""
    ok, fixed, edges, points = _prepare(poses)
    thickness, radius = default_sizes(scene)
    for color, a, b in edges:
        both = ok[:, a] & ok[:, b]
        for p, q in zip(fixed[:, a][both].tolist(), fixed[:, b][both].tolist(), strict=True):
            cv2.line(scene, p, q, color, thickness, line, _SHIFT)
    for color, index in points:
        for p in fixed[:, index][ok[:, index]].tolist():
            cv2.circle(scene, p, radius * _ONE, color, -1, line, _SHIFT)
    return scene


def per_call_no_aa(scene: np.ndarray, poses: Poses) -> np.ndarray:
    return per_call(scene, poses, cv2.LINE_8)


def _grouped_edges(scene: np.ndarray, ok, fixed, edges) -> int:
    thickness, radius = default_sizes(scene)
    for color, a, b in edges:
        both = ok[:, a] & ok[:, b]
        segments = np.stack([fixed[:, a], fixed[:, b]], axis=2)[both]
        if len(segments):
            cv2.polylines(scene, segments, False, color, thickness, cv2.LINE_AA, _SHIFT)
    return radius


def grouped_edges_circles(scene: np.ndarray, poses: Poses) -> np.ndarray:
    """One polylines call per edge colour, one cv2.circle per keypoint."""
    ok, fixed, edges, points = _prepare(poses)
    radius = _grouped_edges(scene, ok, fixed, edges)
    for color, index in points:
        for p in fixed[:, index][ok[:, index]].tolist():
            cv2.circle(scene, p, radius * _ONE, color, -1, cv2.LINE_AA, _SHIFT)
    return scene


def grouped_zero_length(scene: np.ndarray, poses: Poses) -> np.ndarray:
    """One polylines call per colour; keypoints as zero-length open segments (two caps each)."""
    ok, fixed, edges, points = _prepare(poses)
    radius = _grouped_edges(scene, ok, fixed, edges)
    for color, index in points:
        chosen = fixed[:, index][ok[:, index]]
        if len(chosen):
            segments = np.repeat(chosen[:, None], 2, axis=1)
            cv2.polylines(scene, segments, False, color, 2 * radius, cv2.LINE_AA, _SHIFT)
    return scene


# --- timing --------------------------------------------------------------------------------------


def median_ms(methods: dict, pose_sets: list, sv_sets: list, scene: np.ndarray, repeat: int) -> dict:
    """Median ms of each method, interleaved frame by frame so that load on the machine hits all
    of them alike; each draws on a fresh copy of ``scene``."""
    times: dict[str, list[float]] = {name: [] for name in methods}
    for _ in range(repeat):
        for poses, key_points in zip(pose_sets, sv_sets, strict=True):
            for name, (draw, wants_sv) in methods.items():
                canvas = scene.copy()
                start = time.perf_counter()
                draw(canvas, key_points if wants_sv else poses)
                times[name].append(time.perf_counter() - start)
    return {name: float(np.median(t) * 1e3) for name, t in times.items()}


def main() -> None:
    import supervision as sv

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=100, help="different pose sets per person count")
    parser.add_argument("--repeat", type=int, default=3, help="passes over those pose sets")
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    scene = background(rng)
    thickness, radius = default_sizes(scene)
    ours = PoseAnnotator()
    ours_aliased = PoseAnnotator(antialias=False)
    edges = sv.EdgeAnnotator(thickness=thickness, edges=[(a + 1, b + 1) for a, b in COCO.edges])  # 1-based
    vertices = sv.VertexAnnotator(radius=radius)

    def supervision(canvas, key_points):
        return vertices.annotate(edges.annotate(canvas, key_points), key_points)

    def to_sv(poses: Poses):
        key_points = poses.to_supervision()
        key_points.visible = poses.scores > THRESHOLD  # supervision draws every point otherwise
        return key_points

    methods = {
        "ours": (ours.annotate, False),
        "per_call": (per_call, False),
        "ours_no_aa": (ours_aliased.annotate, False),
        "per_call_no_aa": (per_call_no_aa, False),
        "grouped_edges_circles": (grouped_edges_circles, False),
        "grouped_zero_length": (grouped_zero_length, False),
        "supervision": (supervision, True),
    }
    counts = (1, 5, 20)
    results = []
    for n in counts:
        # No track ids: supervision's annotators draw none, so neither do we here.
        pose_sets = [synthetic_poses(n, rng).replace(track_ids=None) for _ in range(args.frames)]
        sv_sets = [to_sv(p) for p in pose_sets]  # converting is not timed
        median_ms(methods, pose_sets[:5], sv_sets[:5], scene, 1)  # warm up
        row = {"persons": n}
        row.update(
            {
                f"{name}_ms": ms
                for name, ms in median_ms(methods, pose_sets, sv_sets, scene, args.repeat).items()
            }
        )
        row["supervision_over_ours"] = row["supervision_ms"] / row["ours_ms"]
        row["supervision_over_ours_no_aa"] = row["supervision_ms"] / row["ours_no_aa_ms"]
        results.append(row)

    print(f"{WIDTH}x{HEIGHT} frame, median ms per frame over {args.frames * args.repeat} frames")
    print(f"{'persons':<26}" + "".join(f"{n:>9}" for n in counts))
    for name in methods:
        print(f"{name:<26}" + "".join(f"{row[f'{name}_ms']:>9.2f}" for row in results))
    for key, label in (
        ("supervision_over_ours", "supervision / ours"),
        ("supervision_over_ours_no_aa", "supervision / ours_no_aa"),
    ):
        print(f"{label:<26}" + "".join(f"{row[key]:>8.1f}x" for row in results))

    OUT.mkdir(parents=True, exist_ok=True)
    report = {
        "frame": [HEIGHT, WIDTH],
        "thickness": thickness,
        "radius": radius,
        "kpt_threshold": THRESHOLD,
        "frames_per_count": args.frames * args.repeat,
        "notes": "ours, per_call and grouped_* draw anti-aliased (LINE_AA, sub-pixel); "
        "ours_no_aa, per_call_no_aa and supervision draw LINE_8. supervision gets visible=scores>threshold; "
        "the Poses->KeyPoints conversion is not timed; no track ids are drawn. Methods are interleaved "
        "frame by frame, each drawing on a fresh copy of the frame.",
        "versions": {
            "python": platform.python_version(),
            "opencv": cv2.__version__,
            "numpy": np.__version__,
            "supervision": sv.__version__,
        },
        "machine": platform.processor() or platform.machine(),
        "results": results,
    }
    (OUT / "render.json").write_text(json.dumps(report, indent=2))

    example = background(np.random.default_rng(1))
    example_poses = synthetic_poses(5, np.random.default_rng(7))
    PoseAnnotator(show_boxes=True).annotate(example, example_poses)
    HudAnnotator().annotate(example, ["fps 30.0", "latency 41 ms", f"persons {len(example_poses)}"])
    cv2.imwrite(str(OUT / "render_example.png"), cv2.cvtColor(example, cv2.COLOR_RGB2BGR))
    print(f"wrote {OUT / 'render.json'} and {OUT / 'render_example.png'}")


if __name__ == "__main__":
    main()

"""Joint angles over time as a picture (``--plot PATH.png``, the web page's Video tab).

matplotlib is an optional extra (``pip install 'vitpose-live[plot]'``); without it
:func:`plot_angles` raises a :class:`PlotError` that says so in one line. The figure is drawn on
matplotlib's Agg canvas directly, not through ``pyplot``: no global figure state, so it is safe
from any thread and never opens a window.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from .errors import VitposeError
from .skeletons import side_of

__all__ = ["PlotError", "plot_angles"]

_SIDE_COLORS = {"left": "#3cdc5a", "right": "#ff961e", None: "#4682d2"}  # render.py's LEFT and RIGHT
_DPI = 100


class PlotError(VitposeError, RuntimeError):
    """A plot that cannot be made (matplotlib missing, nothing to plot)."""


def _figure_class():
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as error:
        raise PlotError("plots need matplotlib: pip install 'vitpose-live[plot]'") from error
    return Figure, FigureCanvasAgg


def _rows(names: Sequence[str]) -> dict[str, list[str]]:
    """Names grouped by joint, left and right together: ``{"elbow": ["left_elbow", ...], ...}``."""
    rows: dict[str, list[str]] = {}
    for name in names:
        rows.setdefault(side_of(name)[1], []).append(name)
    return rows


def plot_angles(
    times,
    angles_by_name: Mapping[str, Sequence[float | None]],
    path: str | Path,
    size: tuple[int, int] = (1200, 900),
    title: str | None = None,
) -> Path:
    """Write a PNG of exactly ``size`` (width, height) pixels: one panel per joint (left and right
    in the colours the skeleton is drawn in), degrees 0 to 180 against ``times`` in seconds.
    Unknown angles (``None``, NaN) leave gaps. Returns ``path``."""
    Figure, FigureCanvasAgg = _figure_class()
    times = np.asarray(times, np.float64).reshape(-1)
    if not angles_by_name:
        raise PlotError("no joint angles to plot (the keypoints are not COCO's, or nobody was found)")
    series = {name: np.array([np.nan if v is None else v for v in values], np.float64)
              for name, values in angles_by_name.items()}  # fmt: skip
    for name, values in series.items():
        if len(values) != len(times):
            raise ValueError(f"{name}: {len(values)} angles but {len(times)} times")
    width, height = int(size[0]), int(size[1])
    figure = Figure(figsize=(width / _DPI, height / _DPI), dpi=_DPI, layout="constrained")
    FigureCanvasAgg(figure)
    rows = _rows(list(series))
    axes = figure.subplots(len(rows), 1, sharex=True, squeeze=False)[:, 0]
    for ax, (joint, names) in zip(axes, rows.items(), strict=True):
        for name in names:
            side = side_of(name)[0]
            ax.plot(times, series[name], color=_SIDE_COLORS[side], linewidth=1.6, label=side or name)
        ax.set_ylim(0, 180)
        ax.set_yticks([0, 45, 90, 135, 180])
        ax.set_ylabel(f"{joint.replace('_', ' ')} (°)")
        ax.grid(True, alpha=0.3)
    axes[0].legend(loc="lower right", bbox_to_anchor=(1, 1), fontsize="small", frameon=False, ncols=2)
    axes[-1].set_xlabel("time (s)")
    if title:
        figure.suptitle(title)
    path = Path(path)
    figure.savefig(path, dpi=_DPI, format="png")
    return path

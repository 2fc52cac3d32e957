"""The package's import graph, read from its source (function-level imports included), and the
layer picture the README shows, made from that graph.

    python tests/support/layers.py      # prints the picture for README "How it is built"
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "vitpose_live"

# Top to bottom; a module may import from its own layer's modules (no cycle) and from layers below.
# Layers on one row are peers: they do not import each other.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("apps",),
    ("runtime",),
    ("engine", "procs"),
    ("models", "sources", "outputs"),
    ("base",),
)
LAYER_TEXT = {
    "apps": "the faces: command line, single-input job, collections, Ray, window, web page",
    "runtime": "the threaded pipeline and the one run loop every face uses",
    "engine": "detector + pose + tracking in one recipe; live detection, smoothing, profiles",
    "procs": "the decode and render processes of --io-processes, frames in shared memory",
    "models": "everything torch: the detector, ViTPose, crops, heatmaps, loading, devices",
    "sources": "files, cameras, streams, folders, synthetic scenes behind one Source protocol",
    "outputs": "annotated videos (with audio) and images, keypoints as JSONL, CSV, COCO",
    "base": "types, errors, skeletons, defaults, drawing; system/: priority, interrupts, memory",
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def imports(path: Path, known: dict[str, Path]) -> set[tuple[str, str]]:
    """(module imported, name imported or "") for every import of the package in ``path``."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:
                full = f"{target}.{alias.name}"
                found.add((full, "") if full in known else (target, alias.name))
        elif isinstance(node, ast.Import):
            found.update((alias.name, "") for alias in node.names)
    return {(target, what) for target, what in found if target.split(".")[0] == PACKAGE.name and target != name}


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: {target for target, _ in imports(path, known)} for name, path in known.items()}


def layer_of(module: str) -> str:
    parts = module.split(".")
    if len(parts) < 2 or parts[1] == "system":
        return "base"
    if parts[1] in {layer for row in LAYERS for layer in row}:
        return parts[1]
    return "base"  # top-level modules: types, errors, skeletons, defaults, render


def rank(layer: str) -> int:
    return next(i for i, row in enumerate(LAYERS) if layer in row)


def layer_edges() -> dict[str, set[str]]:
    """Which layers each layer imports from (the package's __init__ re-exports, so it is left out)."""
    edges: dict[str, set[str]] = {}
    for module, targets in graph().items():
        if module == PACKAGE.name:
            continue
        for target in targets:
            if target != PACKAGE.name and layer_of(target) != layer_of(module):
                edges.setdefault(layer_of(module), set()).add(layer_of(target))
    return edges


def picture() -> str:
    edges = layer_edges()
    lines = []
    for row in LAYERS:
        for layer in row:
            below = sorted(edges.get(layer, ()), key=lambda other: (rank(other), other))
            uses = f"  → {', '.join(below)}" if below else ""
            lines.append(f"{layer + '/' if layer != 'base' else 'base':<10}{LAYER_TEXT[layer]}{uses}")
    return "\n".join(lines)


if __name__ == "__main__":
    print(picture())

"""The package keeps the shape the README's "How it is built" shows: layers as folders, imports
only going down (function-level imports counted), no import cycle, no private name crossing a
subpackage, small modules and functions with a docstring on every module."""

import ast
import re

import pytest
from support.layers import LAYERS, PACKAGE, graph, imports, layer_of, modules, picture, rank

REPO = PACKAGE.parent
MAX_MODULE_LINES, MAX_FUNCTION_LINES = 400, 60


def cycle_in(edges: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a list of modules, or None."""
    state: dict[str, int] = {}  # 1: on the path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        state[node] = 2
        path.pop()
        return None

    for node in sorted(edges):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_the_cycle_finder_finds_a_cycle_and_accepts_a_tree():
    assert cycle_in({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert cycle_in({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_no_module_of_the_package_imports_itself_back_through_others():
    edges = {module: targets - {PACKAGE.name} for module, targets in graph().items()}
    assert cycle_in(edges) is None


def test_imports_only_go_down_the_layers_and_peers_do_not_import_each_other():
    wrong = []
    for module, targets in graph().items():
        if module == PACKAGE.name:
            continue
        for target in targets - {PACKAGE.name}:
            mine, theirs = layer_of(module), layer_of(target)
            if mine != theirs and rank(theirs) <= rank(mine):
                wrong.append(f"{module} ({mine}) imports {target} ({theirs})")
    assert not wrong, "\n".join(wrong)


def test_there_are_at_least_five_layer_folders():
    folders = [layer for row in LAYERS for layer in row if layer != "base"]
    assert len(folders) >= 5 and all((PACKAGE / layer / "__init__.py").is_file() for layer in folders)


def test_no_private_name_is_imported_from_another_subpackage():
    known = modules()
    crossing = []
    for module, path in known.items():
        for target, name in imports(path, known):
            private = name.startswith("_") or any(part.startswith("_") and part != "__init__" for part in target.split("."))
            if private and target.split(".")[:2] != module.split(".")[:2]:
                crossing.append(f"{module} imports {target}.{name}".rstrip("."))
    assert not crossing, "\n".join(crossing)


def test_modules_are_small_and_each_says_what_it_is():
    too_long = [f"{name}: {len(path.read_text().splitlines())} lines" for name, path in modules().items()
                if len(path.read_text().splitlines()) > MAX_MODULE_LINES]
    undocumented = [name for name, path in modules().items() if not ast.get_docstring(ast.parse(path.read_text()))]
    assert not too_long, "\n".join(too_long)
    assert not undocumented, "\n".join(undocumented)


def test_no_function_is_longer_than_sixty_lines():
    long = []
    for name, path in modules().items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long.append(f"{name}.{node.name}: {lines} lines")
    assert not long, "\n".join(long)


def test_the_readme_shows_the_layers_as_the_code_has_them():
    readme = (REPO / "README.md").read_text()
    shown = re.search(r"<!-- layers: begin.*?-->\n```text\n(.*?)```\n<!-- layers: end -->", readme, re.S)
    assert shown, "README.md has no layers picture between its markers"
    assert shown.group(1).rstrip("\n") == picture(), "run: python tests/support/layers.py, and paste it into README.md"


@pytest.mark.parametrize("name", ["build_engine", "EngineOptions", "open_source", "run", "RunOptions", "Outputs",
                                  "VitposeError", "UserError", "SourceError", "SinkError", "ModelLoadError"])
def test_the_public_surface_names_the_engine_builder_the_loop_sources_and_errors(name):
    import vitpose_live

    assert name in vitpose_live.__all__ and getattr(vitpose_live, name) is not None

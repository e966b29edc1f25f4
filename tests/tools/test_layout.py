"""The package's layering: the ROI model and file-name parsing shared, no import cycle."""

import ast
from pathlib import Path

import pytest

import omero_movein

pytestmark = pytest.mark.tools


def package_imports():
    """{module: the package's modules it imports}, lazy imports in functions included."""
    graph = {}
    for path in Path(omero_movein.__file__).parent.glob("*.py"):
        tree = ast.parse(path.read_text())
        graph[path.stem] = {
            node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.level == 1
        }
    return graph


def test_no_import_cycle():
    graph = package_imports()
    done, path = set(), []

    def visit(module):
        assert module not in path, f"import cycle: {' -> '.join([*path, module])}"
        if module in done:
            return
        path.append(module)
        for imported in graph.get(module, ()):
            visit(imported)
        path.pop()
        done.add(module)

    for module in graph:
        visit(module)


def test_both_commands_share_the_roi_model_and_file_name_parsing():
    graph = package_imports()

    assert "rois" in graph["omexml"] and "rois" in graph["upload"]  # the two ROI writers, one model
    assert "filenames" in graph["positions"] and "filenames" in graph["rois"]
    # Neither writer nor the model depends on a command.
    assert not {"masks2rois", "png2tiff", "positions", "conversion"} & (
        graph["rois"] | graph["omexml"] | graph["upload"])

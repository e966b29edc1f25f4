"""Fixtures of the data tools' tests; the data themselves are made by movein_data."""

import pytest

from .movein_data import POSITIONS, write_position


@pytest.fixture
def lab_tree(tmp_path):
    """A small lab tree; returns (root, {position path: {(channel, t, z): plane}})."""
    root = tmp_path / "lab"
    positions = {position: write_position(root / position, seed=index) for index, position in enumerate(POSITIONS)}
    return root, positions

import numpy as np
import pytest

from omero_movein.outline import trace_outline

pytestmark = pytest.mark.tools


def shoelace_area(corners):
    xs, ys = np.array(corners, dtype=float).T
    return abs(np.dot(xs, np.roll(ys, -1)) - np.dot(ys, np.roll(xs, -1))) / 2


def rasterize(corners, shape):
    """Pixels whose centres lie inside the polygon (even-odd rule).

    Corners are on integer coordinates and centres on half-integers, so no
    centre is ever on an edge and the rule is unambiguous.
    """
    rows, columns = np.mgrid[: shape[0], : shape[1]]
    centre_x, centre_y = columns + 0.5, rows + 0.5
    inside = np.zeros(shape, dtype=bool)
    for (x0, y0), (x1, y1) in zip(corners, corners[1:] + corners[:1], strict=True):
        if y0 == y1:
            continue  # horizontal edges never cross a horizontal ray through a centre
        crosses = ((y0 > centre_y) != (y1 > centre_y)) & (centre_x < x0 + (centre_y - y0) * (x1 - x0) / (y1 - y0))
        inside ^= crosses
    return inside


@pytest.mark.parametrize(
    ("mask", "corners"),
    [
        ([[1]], [(0, 0), (1, 0), (1, 1), (0, 1)]),
        ([[1, 1], [1, 0]], [(0, 0), (2, 0), (2, 1), (1, 1), (1, 2), (0, 2)]),
        ([[0, 1], [1, 1]], [(1, 0), (2, 0), (2, 2), (0, 2), (0, 1), (1, 1)]),
        # Pixels touching only at a corner are one piece; the outline passes that corner twice.
        ([[1, 0], [0, 1]], [(0, 0), (1, 0), (1, 1), (2, 1), (2, 2), (1, 2), (1, 1), (0, 1)]),
        ([[0, 1], [1, 0]], [(1, 0), (2, 0), (2, 1), (1, 1), (1, 2), (0, 2), (0, 1), (1, 1)]),
        # A hole is not traced: the outer boundary only.
        ([[1, 1, 1], [1, 0, 1], [1, 1, 1]], [(0, 0), (3, 0), (3, 3), (0, 3)]),
    ],
    ids=["pixel", "L", "J", "diagonal", "anti-diagonal", "ring"],
)
def test_outline_corners(mask, corners):
    assert trace_outline(np.array(mask, dtype=bool)) == corners


def random_hole_free_shapes(count, seed=1):
    """Masks with one 8-connected piece and no hole: ellipses, skylines, staircases."""
    rng = np.random.default_rng(seed)
    for index in range(count):
        kind = index % 3
        if kind == 0:
            rows, columns = np.mgrid[:20, :20]
            a, b = rng.uniform(1, 9, 2)
            angle = rng.uniform(0, np.pi)
            u = (columns - 10) * np.cos(angle) + (rows - 10) * np.sin(angle)
            v = -(columns - 10) * np.sin(angle) + (rows - 10) * np.cos(angle)
            yield (u / a) ** 2 + (v / b) ** 2 <= 1
        elif kind == 1:  # columns of random height hanging from a random top row
            heights = rng.integers(1, 15, rng.integers(1, 15))
            mask = np.zeros((15, len(heights)), dtype=bool)
            for column, height in enumerate(heights):
                mask[:height, column] = True
            yield np.pad(mask, 2)
        else:  # blocks joined corner to corner, only 8-connected
            mask = np.zeros((30, 30), dtype=bool)
            y = x = 1
            for _ in range(rng.integers(1, 6)):
                height, width = rng.integers(1, 4, 2)
                mask[y : y + height, x : x + width] = True
                y, x = y + height, x + width
            yield mask


def test_outline_encloses_exactly_the_pixels_of_hole_free_shapes():
    for mask in random_hole_free_shapes(60):
        if not mask.any():
            continue
        corners = trace_outline(mask)
        assert shoelace_area(corners) == mask.sum()
        np.testing.assert_array_equal(rasterize(corners, mask.shape), mask)


def test_outline_follows_the_piece_of_the_first_pixel():
    mask = np.zeros((6, 6), dtype=bool)
    mask[1:3, 3:5] = True  # first set pixel in row-major order
    mask[4:6, 0:3] = True  # a second piece, larger, not touching

    corners = trace_outline(mask)

    assert corners == [(3, 1), (5, 1), (5, 3), (3, 3)]

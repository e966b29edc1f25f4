"""Polygon outline of a binary mask, traced along pixel edges.

Pixel (column x, row y) covers the square from corner (x, y) to (x+1, y+1), so
an outline along pixel edges encloses exactly the mask's pixels.
"""

import numpy as np

# Headings as steps between corners (y grows downwards), in clockwise order:
# east, south, west, north.
_STEPS = ((1, 0), (0, 1), (-1, 0), (0, -1))
# For each heading, the pixels just ahead of the corner reached, to the left
# and to the right, as (dx, dy) offsets from that corner.
_AHEAD_LEFT = ((0, -1), (0, 0), (-1, 0), (-1, -1))
_AHEAD_RIGHT = ((0, 0), (-1, 0), (-1, -1), (0, -1))


def trace_outline(mask):
    """Corners of the outer boundary of one 8-connected piece of a 2-D boolean mask.

    The piece is the one holding the first set pixel in row-major order; holes
    are not traced. Corners are listed clockwise on screen (y downwards), only
    where the boundary turns, starting at the top-left corner of that pixel.
    """
    height, width = mask.shape
    # A one-pixel frame of False, so looking around any corner stays in bounds.
    inside = np.pad(np.asarray(mask, dtype=bool), 1).tolist()
    first = int(np.flatnonzero(mask)[0])
    start = (first % width, first // width)
    x, y = start
    heading = 0  # east along the top edge of the first pixel: the piece on the right
    corners = [start]
    while True:
        step_x, step_y = _STEPS[heading]
        x, y = x + step_x, y + step_y
        if (x, y) == start:
            return corners
        left_x, left_y = _AHEAD_LEFT[heading]
        right_x, right_y = _AHEAD_RIGHT[heading]
        # Keep the piece on the right: turn left onto it if it is there (which also
        # joins pixels touching only diagonally), go on while it stays on the
        # right, turn right round it when it ends.
        if inside[y + left_y + 1][x + left_x + 1]:
            turn = -1
        elif inside[y + right_y + 1][x + right_x + 1]:
            turn = 0
        else:
            turn = 1
        if turn:
            heading = (heading + turn) % 4
            corners.append((x, y))

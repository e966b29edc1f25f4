"""Polygon outlines of labelled cells, traced along pixel edges, for a whole frame at once.

Pixel (column x, row y) covers the square from corner (x, y) to (x+1, y+1), so
an outline along pixel edges encloses exactly its cell's pixels.

Every side of a cell's pixel that borders another label is a directed edge,
heading so the pixel is on its right (clockwise on screen, y downwards): the
top side heads east, the right side south, the bottom side west, the left side
north. Each edge links to the next edge of its label at its end corner, and
ordering the edges along those links (pointer jumping) traces every outline of
the frame in a few numpy passes, with no Python loop over pixels or cells.
"""

import numpy as np

# Per side (top, right, bottom, left), which is also its heading (east, south, west, north):
_STEP = np.array(((1, 0), (0, 1), (-1, 0), (0, -1)))  # the heading, as (dx, dy)
_BEYOND = np.array(((0, -1), (1, 0), (0, 1), (-1, 0)))  # the neighbouring pixel across the side
_START = np.array(((0, 0), (1, 0), (1, 1), (0, 1)))  # the side's first corner, from the pixel's top-left one


def frame_outlines(labels):
    """{label: corners} for every non-zero label of a 2-D integer image.

    Corners are an (n, 2) array of (x, y) in image coordinates: the outer
    boundary of the label's 8-connected piece holding its first pixel in
    row-major order, clockwise, starting at that pixel's top-left corner and
    listing only the corners where the boundary turns. Holes are not traced.
    """
    labels = np.asarray(labels)
    width = labels.shape[1]
    # A frame of background, so every neighbour lookup stays in bounds; flat indices from here on.
    padded = np.pad(labels, 1).ravel()
    stride = width + 2
    step = _STEP @ (1, stride)
    beyond = _BEYOND @ (1, stride)

    pixels = np.flatnonzero(padded)  # row-major
    if not pixels.size:
        return {}
    values = padded[pixels]
    # Virtual edges: 4 per labelled pixel, index 4 * (the pixel's place in `pixels`) + side.
    is_edge = padded[pixels[:, None] + beyond] != values[:, None]
    edge_index = np.cumsum(is_edge.ravel()) - 1  # virtual edge -> real edge
    edge_pixel, side = np.nonzero(is_edge)
    pixel, owner = pixels[edge_pixel], values[edge_pixel]
    count = pixel.size

    # The next edge at the end corner: turn left onto the pixel diagonally ahead if it is
    # the label's (which joins pieces touching only at a corner), else go straight on
    # along the pixel ahead, else turn right round this pixel.
    ahead = pixel + step[side]
    diagonal = ahead + beyond[side]
    turn_left = padded[diagonal] == owner
    go_straight = ~turn_left & (padded[ahead] == owner)
    next_pixel = np.where(turn_left, diagonal, np.where(go_straight, ahead, pixel))
    next_side = np.where(turn_left, side - 1, np.where(go_straight, side, side + 1)) % 4
    place = np.empty(padded.size, np.int64)  # only read where written: at labelled pixels
    place[pixels] = np.arange(pixels.size)
    following = edge_index[4 * place[next_pixel] + next_side]

    # Each outline starts at the top side of its label's first pixel.
    _, first_pixel, pixel_counts = np.unique(values, return_index=True, return_counts=True)
    is_first = np.zeros(count, bool)
    is_first[edge_index[4 * first_pixel]] = True

    # Pointer jumping: every edge's distance, along the links, to its outline's first
    # edge. Edges of holes and of other pieces never reach one and are dropped.
    successor = np.where(is_first, np.arange(count), following)
    distance = (~is_first).astype(np.int64)
    for _ in range(int(4 * pixel_counts.max()).bit_length()):  # a label has at most 4 edges a pixel
        distance += distance[successor]
        successor = successor[successor]
    traced = is_first[successor]

    # A corner is where an edge heads another way than the one before it.
    turns = np.zeros(count, bool)
    turns[following] = side[following] != side
    chosen = np.flatnonzero(traced & turns)
    # Along the outline: the first edge, then by decreasing distance to it.
    along = np.where(is_first[chosen], count, distance[chosen])
    chosen = chosen[np.lexsort((-along, owner[chosen]))]
    row, column = np.divmod(pixel[chosen], stride)
    points = np.stack((column - 1, row - 1), axis=1) + _START[side[chosen]]
    ids, firsts = np.unique(owner[chosen], return_index=True)
    return dict(zip(ids.tolist(), np.split(points, firsts[1:]), strict=True))


def trace_outline(mask):
    """Corners of the outer boundary of a 2-D boolean mask's first piece, as (x, y) tuples (see frame_outlines)."""
    outlines = frame_outlines(np.asarray(mask, dtype=np.uint8))
    return [tuple(corner) for corner in outlines[1].tolist()]

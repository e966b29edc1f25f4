"""Synthetic data shaped like the lab's: a researcher/date/position tree of PNG
planes (Micro-Manager names) and folders of cell-tracking label masks."""

import json

import imageio.v3 as iio
import numpy as np

CHANNELS = ("DAPI", "GFP", "mCherry")
SHAPE = (24, 40)  # rows, columns: not square, so a swapped X/Y shows
POSITIONS = ("alice/2019-05-01/pos01", "alice/2019-05-01/pos02", "bob/2020-01-17/pos07")


def plane_file(t, channel, z):
    """Micro-Manager 1.4's names: the channel by name."""
    return f"img_{t:09d}_{channel}_{z:03d}.png"


def mm2_plane_file(position=0):
    """Micro-Manager 2.0's names: the channel by number, and the position's."""

    def name(t, channel, z):
        return f"img_channel{int(channel):03d}_position{position:03d}_time{t:09d}_z{z:03d}.png"

    return name


def write_mm_metadata(folder, channel_names):
    """The part of Micro-Manager's metadata.txt the tools read: the acquisition's channel names."""
    summary = {"Prefix": "acq", "Channels": len(channel_names), "ChNames": list(channel_names)}
    (folder / "metadata.txt").write_text(json.dumps({"Summary": summary, "FrameKey-0-0-0": {}}))


def write_position(
    folder, channels=CHANNELS, size_t=3, size_z=2, shape=SHAPE, dtype=np.uint16, seed=0, name=plane_file
):
    """Write a position folder of random planes; returns {(channel, t, z): plane}."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    planes = {}
    for t in range(size_t):
        for channel in channels:
            for z in range(size_z):
                plane = rng.integers(0, np.iinfo(dtype).max, shape, dtype=dtype, endpoint=True)
                iio.imwrite(folder / name(t, channel, z), plane)
                planes[channel, t, z] = plane
    # Microscope software leaves other files beside the planes.
    (folder / "metadata.txt").write_text("{}")
    return planes


def tracked_cells(shape=SHAPE, frames=4):
    """Label masks of cells over frames, with the awkward cases a tracker produces.

    Track 3 drifts right on every frame; track 12 appears from frame 1 on; track
    40000 (an id above 8 bits) is on frames 0 and 2 only and has two pieces that
    touch only diagonally; track 5 touches the image's edge.
    """
    rows, columns = np.mgrid[: shape[0], : shape[1]]
    masks = []
    for t in range(frames):
        labels = np.zeros(shape, dtype=np.uint16)
        labels[(rows - 6) ** 2 + (columns - 6 - 2 * t) ** 2 <= 9] = 3
        if t >= 1:
            labels[(rows - 16) ** 2 / 9 + (columns - 24) ** 2 / 25 <= 1] = 12
        if t in (0, 2):
            labels[10:13, 30:33] = 40000
            labels[13:15, 33:35] = 40000
        labels[shape[0] - 3 :, :4] = 5
        masks.append(labels)
    return masks


def write_masks(folder, masks, name="mask_{t:04d}.png"):
    folder.mkdir(parents=True, exist_ok=True)
    for t, labels in enumerate(masks):
        iio.imwrite(folder / name.format(t=t), labels)
    return folder


def decode_mask(mask_shape):
    """An OME Mask's bits back as a boolean array of its Width x Height."""
    width, height = int(mask_shape.width), int(mask_shape.height)
    bits = np.unpackbits(np.frombuffer(mask_shape.bin_data.value, dtype=np.uint8))
    return bits[: width * height].reshape(height, width).astype(bool)


# Two cells drawn by hand over two frames, with what their ROIs must hold worked out by
# hand too, in image coordinates (x the column, y the row; pixel (x, y) spans x..x+1, y..y+1).
# The cells are not symmetric and sit far from the origin, and the frame is not square,
# so swapped x and y, a lost bounding-box offset or a half-pixel shift cannot match.
DRAWN = {
    # track: {frame: (pixels as (x, y), bounding box (x, y, width, height), mask rows, outline corners)}
    7: {
        0: (
            [(x, y) for y in range(5, 8) for x in range(10, 13)] + [(10, 8)],
            (10, 5, 3, 4),
            ["###", "###", "###", "#.."],
            [(10, 5), (13, 5), (13, 8), (11, 8), (11, 9), (10, 9)],
        ),
        1: (
            [(x, y) for y in range(6, 9) for x in range(12, 15)] + [(12, 9)],
            (12, 6, 3, 4),
            ["###", "###", "###", "#.."],
            [(12, 6), (15, 6), (15, 9), (13, 9), (13, 10), (12, 10)],
        ),
    },
    9: {
        0: (
            [(33, 19)] + [(x, 20) for x in range(30, 36)],
            (30, 19, 6, 2),
            ["...#..", "######"],
            [(33, 19), (34, 19), (34, 20), (36, 20), (36, 21), (30, 21), (30, 20), (33, 20)],
        ),
    },
}


def drawn_masks(frames=2):
    masks = [np.zeros(SHAPE, np.uint16) for _ in range(frames)]
    for track, cells in DRAWN.items():
        for t, (pixels, _, _, _) in cells.items():
            for x, y in pixels:
                masks[t][y, x] = track
    return masks


def mask_rows(rows):
    """A mask drawn as strings ('#' set) as a boolean array."""
    return np.array([[char == "#" for char in row] for row in rows])


def parse_points(points):
    """OME/OMERO Points text as [(x, y)], numbers as written (a half-pixel shows as .5)."""
    return [tuple(float(number) for number in point.split(",")) for point in points.split()]

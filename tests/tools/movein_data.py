"""Synthetic data shaped like the lab's: a researcher/date/position tree of PNG
planes (Micro-Manager names) and folders of cell-tracking label masks."""

import imageio.v3 as iio
import numpy as np

CHANNELS = ("DAPI", "GFP", "mCherry")
SHAPE = (24, 40)  # rows, columns: not square, so a swapped X/Y shows
POSITIONS = ("alice/2019-05-01/pos01", "alice/2019-05-01/pos02", "bob/2020-01-17/pos07")


def plane_file(t, channel, z):
    return f"img_{t:09d}_{channel}_{z:03d}.png"


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

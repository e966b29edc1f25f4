"""The ROI model: tracked cells read from label masks, with their shapes and colours.

Each mask image is one frame: 0 is background and N is the cell with track id
N. A cell on a frame is a CellShape (its pixels within their bounding box, and
optionally its outline); a Segmentation holds every track's cells by frame.
Both the OME-TIFF writer (omexml) and the upload (upload) turn it into ROIs.
"""

import colorsys
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from .errors import MoveInError
from .filenames import compile_pattern, detect_naming, micro_manager_namings, plane_key
from .images import read_image
from .outline import frame_outlines

MASK_EXTENSION = r"\.(?:png|tiff?)"
# Masks named like the planes they segment; else the frame is the number just before the extension.
NAMINGS = micro_manager_namings(MASK_EXTENSION)
FRAME_NUMBER = compile_pattern(rf".*?(?P<t>\d+){MASK_EXTENSION}")


@dataclass(frozen=True)
class CellShape:
    """One tracked cell on one frame: its pixels within their bounding box."""

    track: int
    t: int
    z: int | None  # None: on every z-plane
    c: int | None  # None: on every channel
    x: int  # the bounding box's left column and top row in the image
    y: int
    mask: np.ndarray  # bool, height x width of the bounding box
    outline: np.ndarray | None = None  # (n, 2) polygon corners (x, y) in image coordinates; None: not traced

    def packed_bits(self):
        """The mask as OME and OMERO store it: row-major bits, most significant first."""
        return np.packbits(self.mask).tobytes()


@dataclass(frozen=True)
class Segmentation:
    frame_shape: tuple  # (height, width) of every mask image
    tracks: dict  # track id -> [CellShape], by frame

    @property
    def shapes(self):
        return [shape for shapes in self.tracks.values() for shape in shapes]


def cells_in_frame(labels):
    """(label, x, y, mask) for each non-zero label, the mask cropped to its bounding box.

    One sort of the labelled pixels groups each label's pixels together and
    gives every bounding box at once, so the cost per label is one crop.
    """
    width = labels.shape[1]
    flat = labels.ravel()
    pixels = np.flatnonzero(flat)
    if not pixels.size:
        return
    values = flat[pixels]
    # Stable, so each label's pixels stay in row-major order: first row first, last row last.
    order = np.argsort(values, kind="stable")
    pixels, values = pixels[order], values[order]
    ids, starts = np.unique(values, return_index=True)
    ends = np.append(starts[1:], len(values))
    rows, columns = np.divmod(pixels, width)
    boxes = zip(
        ids.tolist(),
        rows[starts].tolist(),
        rows[ends - 1].tolist(),
        np.minimum.reduceat(columns, starts).tolist(),
        np.maximum.reduceat(columns, starts).tolist(),
        strict=True,
    )
    for label, top, bottom, left, right in boxes:
        yield label, left, top, labels[top : bottom + 1, left : right + 1] == label


def find_frames(folder, pattern=None):
    """[(t, z or None, path)] of the mask images, by frame, and the naming that read them."""
    folder = Path(folder)
    if not folder.is_dir():
        raise MoveInError(folder, "not a folder")
    paths = sorted(path for path in folder.iterdir() if path.is_file())
    if pattern is not None:
        naming = compile_pattern(pattern)
    else:
        naming = detect_naming(folder, [path.name for path in paths], NAMINGS) or FRAME_NUMBER
    frames = {}
    for path in paths:
        key = plane_key(naming, path)
        if key is None:
            continue
        if key.t is None:
            raise MoveInError("--pattern", "needs a named group t for the frame number")
        if (key.t, key.z) in frames:
            where = f"t={key.t}" if key.z is None else f"t={key.t}, z={key.z}"
            raise MoveInError(path, f"same frame ({where}) as {frames[key.t, key.z].name}")
        frames[key.t, key.z] = path
    if not frames:
        raise MoveInError(folder, f"no file name matches {naming.name}")
    return sorted(((t, z, path) for (t, z), path in frames.items()), key=lambda frame: (frame[0], frame[1] or 0))


def read_labels(path):
    labels = read_image(path)
    if labels.ndim != 2:
        raise MoveInError(path, f"not a single-channel label image (shape {labels.shape})")
    if labels.dtype.kind not in "ui":
        raise MoveInError(path, f"label masks must have integer pixels, not {labels.dtype}")
    if labels.dtype.kind == "i" and labels.min() < 0:
        raise MoveInError(path, "label masks cannot have negative labels")
    return labels


def _frame_cells(path, t, z, the_c, outlines):
    """(frame shape, [CellShape]) of one mask image."""
    labels = read_labels(path)
    traced = frame_outlines(labels) if outlines else {}
    cells = [
        CellShape(track, t, z, the_c, x, y, mask, traced.get(track)) for track, x, y, mask in cells_in_frame(labels)
    ]
    return labels.shape, cells


def segment(folder, pattern=None, the_c=None, the_z=None, outlines=False, jobs=None):
    """Read every mask image of a folder into per-track shapes, with their outlines if asked.

    the_z applies to frames whose name gives no z; the_c to all (None: every
    channel). Frames are read by `jobs` threads (default: one per core):
    decoding and most of numpy's work release the GIL.
    """
    frames = find_frames(folder, pattern)
    tracks = {}
    frame_shape = None
    with ThreadPoolExecutor(jobs or os.cpu_count()) as pool:
        results = pool.map(
            lambda frame: _frame_cells(frame[2], frame[0], the_z if frame[1] is None else frame[1], the_c, outlines),
            frames,
        )
        for (_, _, path), (shape, cells) in tqdm(
            zip(frames, results, strict=True), total=len(frames), unit="frame", disable=None
        ):
            if frame_shape is None:
                frame_shape = shape
            elif shape != frame_shape:
                raise MoveInError(
                    path,
                    f"size {shape[1]}x{shape[0]} differs from the first mask's {frame_shape[1]}x{frame_shape[0]}",
                )
            for cell in cells:
                tracks.setdefault(cell.track, []).append(cell)
    if not tracks:
        raise MoveInError(folder, "no cell in any mask (every pixel is 0)")
    return Segmentation(frame_shape, dict(sorted(tracks.items())))


def check_fits(segmentation, size_x, size_y, size_z, size_c, size_t, image):
    """Refuse ROIs that fall outside the image they are for."""
    height, width = segmentation.frame_shape
    if (width, height) != (size_x, size_y):
        raise MoveInError(image, f"image is {size_x}x{size_y} but the masks are {width}x{height}")
    for shape in segmentation.shapes:
        for name, value, size in (("t", shape.t, size_t), ("z", shape.z, size_z), ("c", shape.c, size_c)):
            if value is not None and value >= size:
                raise MoveInError(
                    image, f"track {shape.track} is on {name}={value} but the image has {size} ({name}=0..{size - 1})"
                )


def track_color(track):
    """A distinct, half-transparent colour per track: (red, green, blue, alpha) in 0..255.

    Hue and saturation step through a two-dimensional low-discrepancy (R2)
    sequence, so neighbouring ids look far apart and no two of the first 5,000
    tracks share a colour (hue alone collides within 1,000).
    """
    hue = (track * 0.7548776662466927) % 1.0
    saturation = 0.45 + 0.55 * ((track * 0.5698402909980532) % 1.0)
    red, green, blue = (round(channel * 255) for channel in colorsys.hsv_to_rgb(hue, saturation, 1.0))
    return red, green, blue, 128


def signed_rgba(red, green, blue, alpha):
    """A colour as OME-XML and OMERO store it: one signed 32-bit RGBA integer."""
    packed = (red << 24) | (green << 16) | (blue << 8) | alpha
    return packed - 2**32 if packed >= 2**31 else packed


def points_text(outline):
    """Polygon corners as OME's Points attribute: "x1,y1 x2,y2 ..." (one %-format: twice as fast as joining)."""
    return ("%d,%d " * len(outline) % tuple(outline.ravel().tolist()))[:-1]

"""omero-masks2rois: cell-tracking label masks -> one ROI per tracked cell.

Each mask image is one frame: 0 is background and N is the cell with track id
N. A cell's ROI holds one Mask shape (optionally also a Polygon outline) for
every frame it appears in. The ROIs go into an OME-TIFF's OME-XML, to an image
on an OMERO server, or both.
"""

import argparse
import colorsys
import getpass
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from ome_types import model
from tqdm import tqdm

from .errors import MoveInError, report
from .filenames import compile_pattern
from .images import read_image
from .omexml import read_ome, rewrite_ome
from .outline import trace_outline

# The frame number is the number just before the extension: mask_0007.png, t12.tif.
DEFAULT_PATTERN = r".*?(?P<t>\d+)\.(?:png|tiff?)"


@dataclass(frozen=True)
class CellShape:
    """One tracked cell on one frame: its pixels within their bounding box."""

    track: int
    t: int
    z: int | None  # None: on every z-plane
    c: int | None  # None: on every channel
    x: int
    y: int
    mask: np.ndarray  # bool, height x width of the bounding box

    def packed_bits(self):
        """The mask as OME and OMERO store it: row-major bits, most significant first."""
        return np.packbits(self.mask).tobytes()

    def outline_points(self):
        """Polygon corners in image coordinates."""
        return [(self.x + x, self.y + y) for x, y in trace_outline(self.mask)]


@dataclass(frozen=True)
class Segmentation:
    frame_shape: tuple  # (height, width) of every mask image
    tracks: dict  # track id -> [CellShape], by frame

    @property
    def shapes(self):
        return [shape for shapes in self.tracks.values() for shape in shapes]


def cells_in_frame(labels):
    """(label, x, y, mask) for each non-zero label, the mask cropped to its bounding box.

    One sort of the labelled pixels groups each label's pixels together, so the
    cost does not grow with the number of labels as one pass per label would.
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
    for label, start, end in zip(ids.tolist(), starts, ends, strict=True):
        label_rows, label_columns = rows[start:end], columns[start:end]
        top, bottom = label_rows[0], label_rows[-1]
        left, right = label_columns.min(), label_columns.max()
        mask = np.zeros((bottom - top + 1, right - left + 1), dtype=bool)
        mask[label_rows - top, label_columns - left] = True
        yield label, int(left), int(top), mask


def find_frames(folder, pattern):
    """[(t, z or None, path)] of the mask images, by frame."""
    folder = Path(folder)
    if not folder.is_dir():
        raise MoveInError(folder, "not a folder")
    frames = {}
    for path in sorted(folder.iterdir()):
        match = pattern.fullmatch(path.name) if path.is_file() else None
        if match is None:
            continue
        groups = match.groupdict()
        if groups.get("t") is None:
            raise MoveInError("--pattern", "needs a named group t for the frame number")
        t = int(groups["t"])
        z = int(groups["z"]) if groups.get("z") is not None else None
        if (t, z) in frames:
            raise MoveInError(path, f"same frame (t={t}{'' if z is None else f', z={z}'}) as {frames[t, z].name}")
        frames[t, z] = path
    if not frames:
        raise MoveInError(folder, f"no file name matches the pattern {pattern.pattern!r}")
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


def segment(folder, pattern=DEFAULT_PATTERN, the_c=None, the_z=None):
    """Read every mask image of a folder into per-track shapes.

    the_z applies to frames whose name gives no z; the_c to all (None: every channel).
    """
    tracks = {}
    frame_shape = None
    for t, z, path in tqdm(find_frames(folder, compile_pattern(pattern).pattern), unit="frame", disable=None):
        labels = read_labels(path)
        if frame_shape is None:
            frame_shape = labels.shape
        elif labels.shape != frame_shape:
            raise MoveInError(
                path,
                f"size {labels.shape[1]}x{labels.shape[0]} differs from the first mask's "
                f"{frame_shape[1]}x{frame_shape[0]}",
            )
        for track, x, y, mask in cells_in_frame(labels):
            shape = CellShape(track, t, the_z if z is None else z, the_c, x, y, mask)
            tracks.setdefault(track, []).append(shape)
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
    """A distinct, half-transparent colour per track: (red, green, blue, alpha) in 0..255."""
    hue = (track * 0.618033988749895) % 1.0  # golden-ratio steps spread neighbouring ids apart
    red, green, blue = (round(channel * 255) for channel in colorsys.hsv_to_rgb(hue, 0.8, 1.0))
    return red, green, blue, 128


def ome_rois(segmentation, polygons):
    """ome-types ROIs, one per track, with IDs ROI:<track> and Shape:<track>:<n>."""
    rois = []
    for track, shapes in segmentation.tracks.items():
        red, green, blue, alpha = track_color(track)
        color = model.Color((red, green, blue, alpha / 255))
        union = []
        for index, shape in enumerate(shapes):
            plane = {"the_t": shape.t, "the_z": shape.z, "the_c": shape.c}
            bits = shape.packed_bits()
            union.append(
                model.Mask(
                    id=f"Shape:{track}:{2 * index}",
                    x=shape.x,
                    y=shape.y,
                    width=shape.mask.shape[1],
                    height=shape.mask.shape[0],
                    bin_data=model.BinData(value=bits, length=len(bits), big_endian=True),
                    fill_color=color,
                    **plane,
                )
            )
            if polygons:
                points = " ".join(f"{x},{y}" for x, y in shape.outline_points())
                union.append(
                    model.Polygon(id=f"Shape:{track}:{2 * index + 1}", points=points, stroke_color=color, **plane)
                )
        rois.append(model.ROI(id=f"ROI:{track}", name=f"track {track}", union=union))
    return rois


def add_rois_to_tiff(path, segmentation, polygons=False, replace=False):
    """Write the ROIs into an OME-TIFF's OME-XML, referenced from its image."""
    ome = read_ome(path)
    image = ome.images[0]
    pixels = image.pixels
    check_fits(segmentation, pixels.size_x, pixels.size_y, pixels.size_z, pixels.size_c, pixels.size_t, path)
    if (ome.rois or image.roi_refs) and not replace:
        raise MoveInError(path, f"already holds {len(ome.rois)} ROIs (use --replace-rois to replace them)")
    ome.rois = ome_rois(segmentation, polygons)
    image.roi_refs = [model.ROIRef(id=roi.id) for roi in ome.rois]
    rewrite_ome(path, ome)


def _password(user, host):
    """From OMERO_PASSWORD, else a prompt: never from the command line, never echoed."""
    password = os.environ.get("OMERO_PASSWORD")
    if password:
        return password
    if not sys.stdin.isatty():
        raise MoveInError("OMERO_PASSWORD", "not set, and there is no terminal to prompt for the password on")
    return getpass.getpass(f"OMERO password for {user}@{host}: ")


def _parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="omero-masks2rois",
        description=(
            "Turn label masks (one image per frame; 0 = background, N = the cell with track id N) "
            "into one ROI per tracked cell, holding its Mask on every frame it appears in. "
            "Write them into an OME-TIFF (--tiff), upload them to an image on an OMERO server (--host), or both."
        ),
        epilog=(
            "The OMERO password is read from the OMERO_PASSWORD environment variable, or prompted for. "
            "Example: omero-masks2rois masks/pos01 --tiff pos01.ome.tif --polygons"
        ),
    )
    parser.add_argument("masks", type=Path, help="folder of label mask images (PNG or TIFF), one per frame")
    parser.add_argument(
        "--pattern",
        default=DEFAULT_PATTERN,
        help="regular expression a mask file's whole name must match, "
        "with a named group t (frame) and optionally z (default: %(default)s)",
    )
    parser.add_argument("--channel", type=int, help="channel index (TheC) of the shapes (default: all channels)")
    parser.add_argument(
        "--z", type=int, help="z-plane index (TheZ) of the shapes whose file name gives none (default: all planes)"
    )
    parser.add_argument(
        "--polygons", action="store_true", help="also add each cell's outline as a Polygon on every frame"
    )
    local = parser.add_argument_group("into an OME-TIFF")
    local.add_argument("--tiff", type=Path, help="OME-TIFF whose OME-XML gets the ROIs (rewritten in place)")
    local.add_argument("--replace-rois", action="store_true", help="replace ROIs the OME-TIFF already holds")
    server = parser.add_argument_group("onto an OMERO server")
    server.add_argument("--host", help="OMERO server to upload to")
    server.add_argument("--port", type=int, default=4064, help="OMERO server port (default: %(default)s)")
    server.add_argument("--user", help="OMERO user name")
    server.add_argument("--image-id", type=int, help="id of the image on the server to attach the ROIs to")
    args = parser.parse_args(argv)
    if args.tiff is None and args.host is None:
        parser.error("give --tiff, --host, or both")
    if args.host is not None and (args.user is None or args.image_id is None):
        parser.error("--host needs --user and --image-id")
    return args


def main(argv=None):
    args = _parse_args(argv)
    try:
        segmentation = segment(args.masks, args.pattern, args.channel, args.z)
        summary = f"{len(segmentation.tracks)} tracks, {len(segmentation.shapes)} cell shapes"
        if args.tiff is not None:
            add_rois_to_tiff(args.tiff, segmentation, args.polygons, args.replace_rois)
            print(f"{args.tiff}: wrote {summary}")
        if args.host is not None:
            from .upload import upload  # omero-py is needed only from here on

            password = _password(args.user, args.host)
            roi_ids = upload(args.host, args.port, args.user, password, args.image_id, segmentation, args.polygons)
            print(f"{args.host}: Image:{args.image_id} got {summary} as {len(roi_ids)} ROIs")
    except MoveInError as err:
        return report(err)
    return 0


if __name__ == "__main__":
    sys.exit(main())

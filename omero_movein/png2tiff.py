"""omero-png2tiff: position folders of PNG planes -> one OME-TIFF (XYZCT) per position.

A position folder holds one grayscale PNG per channel, timepoint and z-plane;
the file name tells which (see `filenames`): Micro-Manager 2.0's and 1.4's
names are recognised as they are, ``--pattern`` reads any other. Planes are
decoded on every core and written in order, one position after another.
"""

import argparse
import os
import sys
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tifffile
from ome_types import model
from tqdm import tqdm

from .errors import MoveInError, report
from .filenames import (
    METADATA_FILE,
    Naming,
    compile_pattern,
    detect_naming,
    metadata_channel_names,
    micro_manager_namings,
    plane_key,
)
from .images import image_header, read_image
from .omexml import serialize

NAMINGS = micro_manager_namings(r"\.png")
SUPPORTED_DTYPES = (np.dtype("uint8"), np.dtype("uint16"))
# Past this a classic TIFF's 32-bit offsets overflow (tifffile's own threshold).
BIGTIFF_THRESHOLD = 2**32 - 2**25
OME_TIFF_SUFFIXES = (".ome.tif", ".ome.tiff")
# Planes decoded ahead of the one being written, per decoding thread: enough that no
# thread waits on the writer, few enough that memory does not grow with the series.
LOOKAHEAD_PER_THREAD = 2


@dataclass(frozen=True)
class Position:
    """Where one position's planes are: a folder, and the position number when the folder holds several."""

    folder: Path
    naming: Naming
    index: int | None
    planes: int  # files of this position, for the progress bar

    def name(self, root):
        """The image's name: its folder's path under root (or root's name), plus PosN for one of several."""
        name = self.folder.relative_to(root).as_posix() if self.folder != root else root.resolve().name
        return name if self.index is None else f"{name}/Pos{self.index}"


@dataclass(frozen=True)
class Layout:
    """What a position holds, as its naming reads the file names."""

    position: Position
    channels: list  # the c values, in plane order
    channel_names: list  # what the OME-XML calls them
    names_from: str  # where the channel names came from
    t_values: list
    z_values: list
    files: dict  # (c value, t value, z value) -> Path
    ignored: int  # files the naming did not match

    @property
    def size_c(self):
        return len(self.channels)

    @property
    def size_t(self):
        return len(self.t_values)

    @property
    def size_z(self):
        return len(self.z_values)

    def paths_in_plane_order(self):
        """Files in XYZCT order: z fastest, then channel, then time."""
        return [self.files[c, t, z] for t in self.t_values for c in self.channels for z in self.z_values]


def _consecutive(folder, group, values):
    """The sorted values of t or z, which must run without a gap from the first."""
    values = sorted(values)
    expected = list(range(values[0], values[0] + len(values)))
    if values != expected:
        gap = min(set(expected) - set(values))
        raise MoveInError(folder, f"missing plane: no file for {group}={gap} (found {group}={values[0]}..{values[-1]})")
    return values


def _channels(position, found, options, metadata_names):
    """(c values in plane order, names to store, where the names came from)."""
    numbered = all(c.isdigit() for c in found)
    if options.channel_order:
        unknown = sorted(found - set(options.channel_order))
        if unknown:
            raise MoveInError(position.folder, f"channel {unknown[0]!r} is not in --channels")
        channels = list(options.channel_order)
    elif numbered:
        channels = sorted(found, key=int)
    elif metadata_names and found <= set(metadata_names):
        # Micro-Manager 1.4 names channels in the file names; the metadata gives the acquisition's order.
        channels = [name for name in metadata_names if name in found]
    else:
        channels = sorted(found)

    if options.channel_names:
        if len(options.channel_names) != len(channels):
            raise MoveInError(
                position.folder,
                f"--channel-names gives {len(options.channel_names)} names for {len(channels)} channels "
                f"({', '.join(channels)})",
            )
        return channels, list(options.channel_names), "--channel-names"
    if numbered and metadata_names and all(int(c) < len(metadata_names) for c in channels):
        # Micro-Manager 2.0 numbers channels in the file names; the metadata names them.
        return channels, [metadata_names[int(c)] for c in channels], METADATA_FILE
    if numbered:  # Micro-Manager 2.0's channel000 is channel 0
        return channels, [str(int(c)) for c in channels], "file names"
    return channels, channels, "file names"


def scan_position(position, options=None):
    """Read a position's layout from its file names, checking every plane is there."""
    options = options or Options()
    folder = position.folder
    files = {}
    ignored = 0
    for path in sorted(p for p in folder.iterdir() if p.is_file()):
        key = plane_key(position.naming, path)
        if key is None:
            ignored += 1
            continue
        if position.index is not None and key.p != position.index:
            continue  # another position's plane
        plane = (key.c or "0", key.t or 0, key.z or 0)
        if plane in files:
            raise MoveInError(path, f"same plane (c={plane[0]}, t={plane[1]}, z={plane[2]}) as {files[plane].name}")
        files[plane] = path
    if not files:
        raise MoveInError(folder, f"no file name matches {position.naming.name}")

    channels, names, names_from = _channels(position, {c for c, _, _ in files}, options, metadata_channel_names(folder))
    t_values = _consecutive(folder, "t", {t for _, t, _ in files})
    z_values = _consecutive(folder, "z", {z for _, _, z in files})
    for t in t_values:
        for c in channels:
            for z in z_values:
                if (c, t, z) not in files:
                    raise MoveInError(folder, f"missing plane: no file for c={c}, t={t}, z={z}")
    return Layout(position, channels, names, names_from, t_values, z_values, files, ignored)


def plane_header(path):
    """(shape, dtype) of a PNG without decoding its pixels."""
    return _checked(path, *image_header(path))


def _checked(path, shape, dtype):
    if len(shape) != 2:
        raise MoveInError(path, f"not a single-channel grayscale image (shape {shape})")
    if dtype not in SUPPORTED_DTYPES:
        raise MoveInError(path, f"pixel type {dtype} is not supported (only uint8 and uint16)")
    return tuple(shape), np.dtype(dtype)


def read_plane(path, shape, dtype):
    """Decode one plane, checking it matches the first plane of its series."""
    plane = read_image(path)
    _checked(path, plane.shape, plane.dtype)
    if plane.shape != shape:
        raise MoveInError(
            path, f"size {plane.shape[1]}x{plane.shape[0]} differs from the first plane's {shape[1]}x{shape[0]}"
        )
    if plane.dtype != dtype:
        raise MoveInError(path, f"pixel type {plane.dtype} differs from the first plane's {dtype}")
    return plane


@dataclass(frozen=True)
class Options:
    """Everything about a conversion that is the same for every position."""

    pattern: str | None = None  # None: recognise Micro-Manager's names
    channel_order: tuple = ()
    channel_names: tuple = ()
    pixel_size: float | None = None  # µm, X and Y
    z_step: float | None = None  # µm
    time_increment: float | None = None  # s
    tile: int | None = None
    compression: str | None = None  # None or "zlib"
    compression_level: int = 1
    jobs: int = os.cpu_count() or 1  # decoding threads


def ome_metadata(name, layout, shape, dtype, options):
    pixels = model.Pixels(
        id="Pixels:0",
        dimension_order="XYZCT",
        type=dtype.name,
        size_x=shape[1],
        size_y=shape[0],
        size_z=layout.size_z,
        size_c=layout.size_c,
        size_t=layout.size_t,
        physical_size_x=options.pixel_size,
        physical_size_y=options.pixel_size,
        physical_size_z=options.z_step,
        time_increment=options.time_increment,
        channels=[
            model.Channel(id=f"Channel:0:{index}", name=channel, samples_per_pixel=1)
            for index, channel in enumerate(layout.channel_names)
        ],
        # All planes, from the first page on, in DimensionOrder.
        tiff_data_blocks=[model.TiffData(ifd=0, plane_count=layout.size_z * layout.size_c * layout.size_t)],
    )
    return model.OME(images=[model.Image(id="Image:0", name=name, pixels=pixels)])


def decoded_in_order(paths, shape, dtype, jobs):
    """Planes decoded by `jobs` threads, yielded in the order of `paths`.

    Pillow's PNG decoding releases the GIL, so threads use every core without
    copying planes between processes. At most LOOKAHEAD_PER_THREAD planes per
    thread are decoded ahead of the one being written, so memory stays flat.
    """
    with ThreadPoolExecutor(jobs, thread_name_prefix="png-decode") as pool:
        ahead = deque()
        try:
            for path in paths:
                ahead.append(pool.submit(read_plane, path, shape, dtype))
                if len(ahead) >= LOOKAHEAD_PER_THREAD * jobs:
                    yield ahead.popleft().result()
            while ahead:
                yield ahead.popleft().result()
        finally:
            # On a failed plane (or write), decode no further.
            for future in ahead:
                future.cancel()


def _tiles(planes, shape, tile):
    for plane in planes:
        for y in range(0, shape[0], tile):
            for x in range(0, shape[1], tile):
                yield plane[y : y + tile, x : x + tile]


def _counted(planes, on_plane):
    for plane in planes:
        yield plane
        on_plane()


def describe_position(position, options):
    """The dry-run summary of a position; checks every file's header on the way."""
    layout = scan_position(position, options)
    paths = layout.paths_in_plane_order()
    shape, dtype = plane_header(paths[0])
    for path in paths[1:]:
        if plane_header(path) != (shape, dtype):
            read_plane(path, shape, dtype)  # raises, naming the difference
    ignored = f", {layout.ignored} other files ignored" if layout.ignored else ""
    return (
        f"names: {position.naming.name}; "
        f"X={shape[1]} Y={shape[0]} Z={layout.size_z} C={layout.size_c} T={layout.size_t} {dtype.name}; "
        f"channels: {', '.join(layout.channel_names)} from {layout.names_from} ({len(paths)} planes{ignored})"
    )


def convert_position(position, output, name, options, on_plane=None):
    """Write one position as an OME-TIFF; nothing is left at `output` on failure."""
    layout = scan_position(position, options)
    paths = layout.paths_in_plane_order()
    shape, dtype = plane_header(paths[0])
    description = serialize(ome_metadata(name, layout, shape, dtype, options))
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    # Same folder, so the final rename is atomic; hidden, so nobody picks it up half-written.
    partial = output.with_name(f".{output.name}.{os.getpid()}.part")
    bigtiff = len(paths) * shape[0] * shape[1] * dtype.itemsize > BIGTIFF_THRESHOLD
    planes = decoded_in_order(paths, shape, dtype, options.jobs)
    if on_plane is not None:
        planes = _counted(planes, on_plane)
    try:
        with tifffile.TiffWriter(partial, bigtiff=bigtiff, ome=False) as writer:
            writer.write(
                _tiles(planes, shape, options.tile) if options.tile else planes,
                shape=(len(paths), *shape),
                dtype=dtype,
                photometric="minisblack",
                tile=(options.tile, options.tile) if options.tile else None,
                compression=options.compression,
                compressionargs={"level": options.compression_level} if options.compression else None,
                maxworkers=options.jobs,  # threads compressing tiles or strips
                description=description,
                metadata=None,
                software="omero-png2tiff",
            )
        os.replace(partial, output)
    except OSError as err:
        raise MoveInError(output, f"cannot write: {err}") from err
    finally:
        planes.close()
        partial.unlink(missing_ok=True)
    return output


def find_positions(root, pattern=None):
    """The positions under root (root included): folders with files of a naming, split by position number.

    Without a pattern each folder's naming is recognised on its own, so a tree
    may mix Micro-Manager 1.4 and 2.0 acquisitions.
    """
    naming = compile_pattern(pattern) if pattern is not None else None
    positions = []
    for folder, _, names in os.walk(root):
        folder = Path(folder)
        folder_naming = naming or detect_naming(folder, names, NAMINGS)
        if folder_naming is None:
            continue
        keys = [key for name in names if (key := plane_key(folder_naming, folder / name)) is not None]
        if not keys:
            continue
        indices = sorted({key.p for key in keys if key.p is not None})
        if len(indices) > 1:
            for index in indices:
                count = sum(1 for key in keys if key.p == index)
                positions.append(Position(folder, folder_naming, index, count))
        else:
            positions.append(Position(folder, folder_naming, None, len(keys)))
    if not positions:
        wanted = naming.name if naming else "Micro-Manager's names (give --pattern)"
        raise MoveInError(root, f"no file name in the tree matches {wanted}")
    return sorted(positions, key=lambda position: (position.folder, position.index or 0))


def output_paths(root, positions, output):
    """Mirror the input tree: <output>/<position's path under root>.ome.tif.

    A folder holding several positions becomes a folder of PosN.ome.tif. A
    single position may instead be given an output path ending in .ome.tif(f).
    """
    if output.name.lower().endswith(OME_TIFF_SUFFIXES):
        if len(positions) != 1:
            raise MoveInError(output, f"is a file name, but {root} holds {len(positions)} positions; give a folder")
        return [output]
    targets = []
    for position in positions:
        relative = position.folder.relative_to(root)
        relative = Path(root.resolve().name) if relative == Path(".") else relative
        if position.index is None:
            targets.append(output / relative.parent / f"{relative.name}.ome.tif")
        else:
            targets.append(output / relative / f"Pos{position.index}.ome.tif")
    return targets


def _parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="omero-png2tiff",
        description=(
            "Turn position folders of PNG planes (one file per channel, timepoint and z-plane) "
            "into one OME-TIFF per position, mirroring the input tree."
        ),
        epilog=(
            "Example: omero-png2tiff /data/lab /data/ome-tiff --pixel-size 0.65 --z-step 2 "
            "--time-increment 300 --compression zlib --tile 512"
        ),
    )
    parser.add_argument("input", type=Path, help="a position folder, or a tree of them (researcher/date/position)")
    parser.add_argument(
        "output",
        type=Path,
        help="output folder (the input tree is mirrored in it), "
        "or for a single position an output path ending in .ome.tif",
    )
    parser.add_argument(
        "--pattern",
        help="regular expression a PNG file's whole name must match, with named groups c (channel), "
        "t, z and p (position; numbers); a group left out means size 1 (default: Micro-Manager 2.0's "
        "img_channel000_position000_time000000000_z000.png and 1.4's img_000000000_DAPI_000.png, "
        "recognised per folder)",
    )
    parser.add_argument(
        "--channels",
        type=_comma_list,
        default=(),
        help="the c values in the order to store them, comma-separated (default: numeric order, else the "
        "order of Micro-Manager's metadata.txt, else alphabetical)",
    )
    parser.add_argument(
        "--channel-names",
        type=_comma_list,
        default=(),
        help="channel names to store, comma-separated, in channel order "
        "(default: from Micro-Manager's metadata.txt for numbered channels, else the c values)",
    )
    parser.add_argument("--pixel-size", type=_positive, help="physical pixel size in X and Y, in µm")
    parser.add_argument("--z-step", type=_positive, help="distance between z-planes, in µm")
    parser.add_argument("--time-increment", type=_positive, help="time between timepoints, in seconds")
    parser.add_argument("--tile", type=_tile_size, help="write tiles of this size (a multiple of 16) instead of strips")
    parser.add_argument(
        "--compression",
        choices=("none", "zlib"),
        default="none",
        help="pixel compression (default: %(default)s; zlib is lossless deflate)",
    )
    parser.add_argument(
        "--compression-level",
        type=int,
        choices=range(1, 10),
        default=1,
        metavar="1-9",
        help="zlib level (default: %(default)s; on noisy microscopy planes higher levels "
        "take several times longer and save a few percent at most)",
    )
    parser.add_argument(
        "--jobs",
        "-j",
        type=_positive_int,
        default=os.cpu_count(),
        help="threads decoding planes (and compressing) at once (default: the number of cores, %(default)s)",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace existing output files")
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="print what each position holds (sizes, pixel type, channels) and write nothing",
    )
    return parser.parse_args(argv)


def _comma_list(text):
    return tuple(item.strip() for item in text.split(",") if item.strip())


def _positive(text):
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, not {text}")
    return value


def _positive_int(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {text}")
    return value


def _tile_size(text):
    value = _positive_int(text)
    if value % 16:
        raise argparse.ArgumentTypeError(f"TIFF tiles must be a multiple of 16, not {text}")
    return value


def _describe(position, options):
    try:
        return describe_position(position, options)
    except MoveInError as err:
        return err


def _convert_all(positions, outputs, names, options):
    """Convert positions one after another, each on every core; a failed one does not stop the rest."""
    results = []
    with tqdm(total=sum(position.planes for position in positions), unit="plane", disable=None) as bar:
        for position, output, name in zip(positions, outputs, names, strict=True):
            try:
                results.append(convert_position(position, output, name, options, lambda: bar.update(1)))
            except MoveInError as err:
                results.append(err)
    return results


def main(argv=None):
    args = _parse_args(argv)
    options = Options(
        pattern=args.pattern,
        channel_order=args.channels,
        channel_names=args.channel_names,
        pixel_size=args.pixel_size,
        z_step=args.z_step,
        time_increment=args.time_increment,
        tile=args.tile,
        compression=None if args.compression == "none" else args.compression,
        compression_level=args.compression_level,
        jobs=args.jobs,
    )
    try:
        if not args.input.is_dir():
            raise MoveInError(args.input, "not a folder")
        positions = find_positions(args.input, args.pattern)
        outputs = output_paths(args.input, positions, args.output)
        if not args.overwrite and not args.dry_run:
            for output in outputs:
                if output.exists():
                    raise MoveInError(output, "already exists (use --overwrite to replace it)")
    except MoveInError as err:
        return report(err)

    names = [position.name(args.input) for position in positions]
    if args.dry_run:
        with ThreadPoolExecutor(args.jobs) as pool:
            results = list(pool.map(_describe, positions, [options] * len(positions)))
    else:
        results = _convert_all(positions, outputs, names, options)

    failed = 0
    for name, output, result in zip(names, outputs, results, strict=True):
        if isinstance(result, MoveInError):
            failed += 1
            report(result)
        elif args.dry_run:
            print(f"{name} -> {output}\n  {result}")
        else:
            print(f"{name} -> {result}")
    return 2 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

"""omero-png2tiff: position folders of PNG planes -> one OME-TIFF (XYZCT) per position.

A position folder holds one grayscale PNG per channel, timepoint and z-plane;
the file name tells which, through a regular expression with the named groups
``c`` (channel name or number), ``t`` and ``z`` (numbers). A group left out of
the pattern means that dimension has size 1.
"""

import argparse
import multiprocessing
import os
import queue
import re
import sys
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tifffile
from ome_types import model
from tqdm import tqdm

from .errors import MoveInError, report
from .images import image_header, read_image
from .omexml import serialize

# Micro-Manager 1.4's naming, which the lab's microscopes wrote: img_<t>_<channel>_<z>.png
DEFAULT_PATTERN = r"img_(?P<t>\d+)_(?P<c>.+)_(?P<z>\d+)\.png"
SUPPORTED_DTYPES = (np.dtype("uint8"), np.dtype("uint16"))
# Past this a classic TIFF's 32-bit offsets overflow (tifffile's own threshold).
BIGTIFF_THRESHOLD = 2**32 - 2**25
OME_TIFF_SUFFIXES = (".ome.tif", ".ome.tiff")


def compile_pattern(text):
    try:
        pattern = re.compile(text)
    except re.error as err:
        raise MoveInError("--pattern", f"not a valid regular expression: {err}") from err
    return pattern


@dataclass(frozen=True)
class Layout:
    """What a position folder holds, as the pattern reads its file names."""

    folder: Path
    channels: list  # the c values, in plane order
    t_values: list
    z_values: list
    files: dict  # (c value, t value, z value) -> Path
    ignored: int  # files the pattern did not match

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


def _number(folder, name, group, text):
    if not text.isdigit():
        raise MoveInError(folder / name, f"{group}={text!r} from the pattern is not a number")
    return int(text)


def _consecutive(folder, group, values):
    """The sorted values of t or z, which must run without a gap from the first."""
    values = sorted(values)
    expected = list(range(values[0], values[0] + len(values)))
    if values != expected:
        gap = min(set(expected) - set(values))
        raise MoveInError(folder, f"missing plane: no file for {group}={gap} (found {group}={values[0]}..{values[-1]})")
    return values


def scan_position(folder, pattern, channel_order=None):
    """Read a position folder's layout from its file names, checking every plane is there."""
    folder = Path(folder)
    files = {}
    ignored = 0
    for path in sorted(p for p in folder.iterdir() if p.is_file()):
        match = pattern.fullmatch(path.name)
        if match is None:
            ignored += 1
            continue
        groups = match.groupdict()
        key = (
            groups.get("c") or "0",
            _number(folder, path.name, "t", groups["t"]) if groups.get("t") is not None else 0,
            _number(folder, path.name, "z", groups["z"]) if groups.get("z") is not None else 0,
        )
        if key in files:
            raise MoveInError(path, f"same plane (c={key[0]}, t={key[1]}, z={key[2]}) as {files[key].name}")
        files[key] = path
    if not files:
        raise MoveInError(folder, f"no file name matches the pattern {pattern.pattern!r}")

    found_channels = {c for c, _, _ in files}
    if channel_order:
        unknown = sorted(found_channels - set(channel_order))
        if unknown:
            example = next(p for (c, _, _), p in files.items() if c == unknown[0])
            raise MoveInError(example, f"channel {unknown[0]!r} is not in --channels")
        channels = list(channel_order)
    elif all(c.isdigit() for c in found_channels):
        channels = sorted(found_channels, key=int)
    else:
        channels = sorted(found_channels)
    t_values = _consecutive(folder, "t", {t for _, t, _ in files})
    z_values = _consecutive(folder, "z", {z for _, _, z in files})
    for t in t_values:
        for c in channels:
            for z in z_values:
                if (c, t, z) not in files:
                    raise MoveInError(folder, f"missing plane: no file for c={c}, t={t}, z={z}")
    return Layout(folder, channels, t_values, z_values, files, ignored)


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

    pattern: str = DEFAULT_PATTERN
    channel_order: tuple = ()
    channel_names: tuple = ()
    pixel_size: float | None = None  # µm, X and Y
    z_step: float | None = None  # µm
    time_increment: float | None = None  # s
    tile: int | None = None
    compression: str | None = None  # None or "zlib"
    compression_level: int = 1


def channel_names(layout, options):
    if not options.channel_names:
        return list(layout.channels)
    if len(options.channel_names) != layout.size_c:
        raise MoveInError(
            layout.folder,
            f"--channel-names gives {len(options.channel_names)} names for {layout.size_c} channels "
            f"({', '.join(layout.channels)})",
        )
    return list(options.channel_names)


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
            for index, channel in enumerate(channel_names(layout, options))
        ],
        # All planes, from the first page on, in DimensionOrder.
        tiff_data_blocks=[model.TiffData(ifd=0, plane_count=layout.size_z * layout.size_c * layout.size_t)],
    )
    return model.OME(images=[model.Image(id="Image:0", name=name, pixels=pixels)])


# Set in each worker process by the pool's initializer; takes a count of planes done.
_progress_queue = None


def _init_worker(progress_queue):
    global _progress_queue
    _progress_queue = progress_queue


def _planes(paths, shape, dtype, tile):
    """Stream planes, one at a time, as whole planes or (for tiled output) as tiles."""
    for path in paths:
        plane = read_plane(path, shape, dtype)
        if tile:
            for y in range(0, shape[0], tile):
                for x in range(0, shape[1], tile):
                    yield plane[y : y + tile, x : x + tile]
        else:
            yield plane
        if _progress_queue is not None:
            _progress_queue.put(1)


def describe_position(folder, options):
    """The dry-run summary of a position; checks every file's header on the way."""
    layout = scan_position(folder, compile_pattern(options.pattern), options.channel_order)
    paths = layout.paths_in_plane_order()
    shape, dtype = plane_header(paths[0])
    for path in paths[1:]:
        if plane_header(path) != (shape, dtype):
            read_plane(path, shape, dtype)  # raises, naming the difference
    ignored = f", {layout.ignored} other files ignored" if layout.ignored else ""
    return (
        f"X={shape[1]} Y={shape[0]} Z={layout.size_z} C={layout.size_c} T={layout.size_t} {dtype.name}; "
        f"channels: {', '.join(channel_names(layout, options))} ({len(paths)} planes{ignored})"
    )


def convert_position(folder, output, name, options):
    """Write one position folder as an OME-TIFF; nothing is left at `output` on failure."""
    layout = scan_position(folder, compile_pattern(options.pattern), options.channel_order)
    paths = layout.paths_in_plane_order()
    shape, dtype = plane_header(paths[0])
    description = serialize(ome_metadata(name, layout, shape, dtype, options))
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    # Same folder, so the final rename is atomic; hidden, so nobody picks it up half-written.
    partial = output.with_name(f".{output.name}.{os.getpid()}.part")
    bigtiff = len(paths) * shape[0] * shape[1] * dtype.itemsize > BIGTIFF_THRESHOLD
    try:
        with tifffile.TiffWriter(partial, bigtiff=bigtiff, ome=False) as writer:
            writer.write(
                _planes(paths, shape, dtype, options.tile),
                shape=(len(paths), *shape),
                dtype=dtype,
                photometric="minisblack",
                tile=(options.tile, options.tile) if options.tile else None,
                compression=options.compression,
                compressionargs={"level": options.compression_level} if options.compression else None,
                description=description,
                metadata=None,
                software="omero-png2tiff",
            )
        os.replace(partial, output)
    except OSError as err:
        raise MoveInError(output, f"cannot write: {err}") from err
    finally:
        partial.unlink(missing_ok=True)
    return output


def find_positions(root, pattern):
    """Folders under root (root included) holding at least one file the pattern matches."""
    positions = []
    for folder, _, names in os.walk(root):
        if any(pattern.fullmatch(name) for name in names):
            positions.append(Path(folder))
    if not positions:
        raise MoveInError(root, f"no file name in the tree matches the pattern {pattern.pattern!r}")
    return sorted(positions)


def output_paths(root, positions, output):
    """Mirror the input tree: <output>/<position's path under root>.ome.tif.

    A single position may instead be given an output path ending in .ome.tif(f).
    """
    if output.name.lower().endswith(OME_TIFF_SUFFIXES):
        if len(positions) != 1:
            raise MoveInError(output, f"is a file name, but {root} holds {len(positions)} positions; give a folder")
        return [output]
    targets = []
    for folder in positions:
        relative = folder.relative_to(root)
        relative = Path(root.resolve().name) if relative == Path(".") else relative
        targets.append(output / relative.parent / f"{relative.name}.ome.tif")
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
        default=DEFAULT_PATTERN,
        help="regular expression a PNG file's whole name must match, with named groups c (channel), "
        "t and z (numbers); a group left out means size 1 (default: %(default)s)",
    )
    parser.add_argument(
        "--channels",
        type=_comma_list,
        default=(),
        help="the c values in the order to store them, comma-separated (default: numeric or alphabetical order)",
    )
    parser.add_argument(
        "--channel-names",
        type=_comma_list,
        default=(),
        help="channel names to store, comma-separated, in channel order (default: the c values)",
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
        help="positions converted in parallel (default: the number of cores, %(default)s)",
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


def _run_all(tasks, jobs, total_planes=None):
    """Run (function, args) tasks in a process pool, with a progress bar over total_planes if given.

    Returns each task's result or MoveInError, in task order.
    """
    progress = multiprocessing.Queue()
    results = [None] * len(tasks)
    with (
        ProcessPoolExecutor(max_workers=min(jobs, len(tasks)), initializer=_init_worker, initargs=(progress,)) as pool,
        tqdm(total=total_planes, unit="plane", disable=None if total_planes else True) as bar,
    ):
        pending = {pool.submit(function, *args): index for index, (function, args) in enumerate(tasks)}
        while pending:
            done, _ = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
            bar.update(_drain(progress))
            for future in done:
                index = pending.pop(future)
                try:
                    results[index] = future.result()
                except MoveInError as err:
                    results[index] = err
        bar.update(_drain(progress))
    return results


def _drain(progress):
    count = 0
    while True:
        try:
            count += progress.get_nowait()
        except queue.Empty:
            return count


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
    )
    try:
        if not args.input.is_dir():
            raise MoveInError(args.input, "not a folder")
        pattern = compile_pattern(args.pattern)
        positions = find_positions(args.input, pattern)
        outputs = output_paths(args.input, positions, args.output)
        if not args.overwrite and not args.dry_run:
            for output in outputs:
                if output.exists():
                    raise MoveInError(output, "already exists (use --overwrite to replace it)")
    except MoveInError as err:
        return report(err)

    names = [
        folder.relative_to(args.input).as_posix() if folder != args.input else args.input.resolve().name
        for folder in positions
    ]
    if args.dry_run:
        results = _run_all([(describe_position, (folder, options)) for folder in positions], args.jobs)
    else:
        tasks = [
            (convert_position, (folder, output, name, options))
            for folder, output, name in zip(positions, outputs, names, strict=True)
        ]
        total_planes = sum(1 for folder in positions for path in folder.iterdir() if pattern.fullmatch(path.name))
        results = _run_all(tasks, args.jobs, total_planes)

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

"""omero-png2tiff: position folders of PNG planes -> one OME-TIFF (XYZCT) per position.

A position folder holds one grayscale PNG per channel, timepoint and z-plane;
the file name tells which (see `filenames`): Micro-Manager 2.0's and 1.4's
names are recognised as they are, ``--pattern`` reads any other. Planes are
decoded on every core and written in order, one position after another.
"""

import argparse
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tqdm import tqdm

from .conversion import convert_position, describe_position
from .errors import MoveInError, report
from .positions import Options, find_positions, output_paths


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

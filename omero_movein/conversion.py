"""One position to one OME-TIFF: planes decoded on several threads, checked, and written in
XYZCT order with their OME-XML, through a partial file renamed into place."""

import os
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import tifffile
from ome_types import model

from .errors import MoveInError
from .images import image_header, read_image
from .omexml import serialize
from .positions import scan_position

SUPPORTED_DTYPES = (np.dtype("uint8"), np.dtype("uint16"))
# Past this a classic TIFF's 32-bit offsets overflow (tifffile's own threshold).
BIGTIFF_THRESHOLD = 2**32 - 2**25
# Planes decoded ahead of the one being written, per decoding thread: enough that no
# thread waits on the writer, few enough that memory does not grow with the series.
LOOKAHEAD_PER_THREAD = 2

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
    decoded = decoded_in_order(paths, shape, dtype, options.jobs)
    planes = _counted(decoded, on_plane) if on_plane else decoded
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
        decoded.close()  # stops the decoding threads if writing failed
        partial.unlink(missing_ok=True)
    return output

"""Reading single images (PNG or TIFF) with errors that name the file."""

import imageio.v3 as iio

from .errors import MoveInError


def _plugin(path):
    # Naming the plugin spares imageio trying every format it knows on a broken file.
    return "tifffile" if path.suffix.lower() in (".tif", ".tiff") else "pillow"


def read_image(path):
    try:
        return iio.imread(path, plugin=_plugin(path))
    except Exception as err:  # the plugins raise many kinds for a broken file
        raise MoveInError(path, f"unreadable image: {err}") from err


def image_header(path):
    """(shape, dtype) without decoding the pixels."""
    try:
        props = iio.improps(path, plugin=_plugin(path))
    except Exception as err:  # as in read_image
        raise MoveInError(path, f"unreadable image: {err}") from err
    return props.shape, props.dtype

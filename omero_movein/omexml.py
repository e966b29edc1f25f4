"""Reading and writing the OME-XML held in an OME-TIFF's ImageDescription."""

import tifffile
from ome_types import from_xml, to_xml

from .errors import MoveInError


def serialize(ome):
    """Validated OME-XML as bytes fit for a TIFF tag.

    TIFF ASCII tags must be 7-bit, so any other character (a µ, an accented
    channel name) becomes an XML character reference, which every XML reader
    decodes back.
    """
    return to_xml(ome, validate=True).encode("ascii", "xmlcharrefreplace")


def read_ome(path):
    """The parsed, validated OME metadata of an OME-TIFF."""
    try:
        with tifffile.TiffFile(path) as tif:
            xml = tif.ome_metadata
    except (OSError, tifffile.TiffFileError) as err:
        raise MoveInError(path, f"cannot read as TIFF: {err}") from err
    if not xml:
        raise MoveInError(path, "not an OME-TIFF (no OME-XML in the ImageDescription)")
    try:
        ome = from_xml(xml, validate=True)
    except Exception as err:  # the XML parser and schema validator raise many kinds
        raise MoveInError(path, f"invalid OME-XML: {err}") from err
    if len(ome.images) != 1:
        raise MoveInError(path, f"expected one image in the OME-XML, found {len(ome.images)}")
    return ome


def rewrite_ome(path, ome):
    """Replace the OME-XML of an OME-TIFF in place; the pixel data are untouched."""
    tifffile.tiffcomment(path, serialize(ome))

"""Reading and writing the OME-XML held in an OME-TIFF's ImageDescription.

The image's own metadata goes through ome-types' object model. ROIs, which can
number hundreds of thousands of shapes, are written as text straight from the
ROI model (rois), then the whole document is validated against the OME schema.
"""

import base64
import re

import tifffile
from lxml import etree
from ome_types import from_xml, model, to_xml, validate_xml

from .errors import MoveInError
from .rois import points_text, signed_rgba, track_color

OME_END = "</OME>"
XML_DECLARATION = re.compile(r"\s*<\?xml[^>]*\?>")


def _tiff_ascii(xml):
    """TIFF ASCII tags must be 7-bit, so any other character (a µ, an accented
    channel name) becomes an XML character reference, which every XML reader
    decodes back."""
    return xml.encode("ascii", "xmlcharrefreplace")


def serialize(ome):
    """Validated OME-XML as bytes fit for a TIFF tag."""
    return _tiff_ascii(to_xml(ome, validate=True))


def read_ome(path):
    """The validated OME metadata of an OME-TIFF without its ROIs, and how many ROIs it had.

    Existing ROIs are only counted and dropped, never turned into objects: a
    file holding 100,000 shapes would otherwise take minutes to read.
    """
    try:
        with tifffile.TiffFile(path) as tif:
            xml = tif.ome_metadata
    except (OSError, tifffile.TiffFileError) as err:
        raise MoveInError(path, f"cannot read as TIFF: {err}") from err
    if not xml:
        raise MoveInError(path, "not an OME-TIFF (no OME-XML in the ImageDescription)")
    try:
        # lxml takes no str with an encoding declaration; the str is decoded already.
        root = etree.fromstring(XML_DECLARATION.sub("", xml, count=1))
        rois = root.xpath("*[local-name()='ROI']")
        for element in rois + root.xpath("*[local-name()='Image']/*[local-name()='ROIRef']"):
            element.getparent().remove(element)
        ome = from_xml(etree.tostring(root, encoding="unicode"), validate=True)
    except Exception as err:  # the XML parser and schema validator raise many kinds
        raise MoveInError(path, f"invalid OME-XML: {err}") from err
    if len(ome.images) != 1:
        raise MoveInError(path, f"expected one image in the OME-XML, found {len(ome.images)}")
    return ome, len(rois)


def _plane_attributes(cell):
    planes = (("TheZ", cell.z), ("TheT", cell.t), ("TheC", cell.c))
    return "".join(f' {name}="{value}"' for name, value in planes if value is not None)


def roi_elements(segmentation):
    """OME-XML ROI elements, one string per track: ROI:<track> holding Shape:<track>:<n>.

    Every value is a number, base64 or a name made of them, so nothing needs escaping.
    """
    for track, cells in segmentation.tracks.items():
        color = signed_rgba(*track_color(track))
        parts = [f'<ROI ID="ROI:{track}" Name="track {track}"><Union>']
        for index, cell in enumerate(cells):
            plane = _plane_attributes(cell)
            bits = cell.packed_bits()
            height, width = cell.mask.shape
            parts.append(
                f'<Mask ID="Shape:{track}:{2 * index}" FillColor="{color}"{plane} '
                f'X="{cell.x}" Y="{cell.y}" Width="{width}" Height="{height}">'
                f'<BinData BigEndian="true" Length="{len(bits)}">{base64.b64encode(bits).decode("ascii")}</BinData>'
                "</Mask>"
            )
            if cell.outline is not None:
                parts.append(
                    f'<Polygon ID="Shape:{track}:{2 * index + 1}" StrokeColor="{color}"{plane} '
                    f'Points="{points_text(cell.outline)}"/>'
                )
        parts.append("</Union></ROI>")
        yield "".join(parts)


def with_rois(ome, segmentation):
    """The OME-XML of `ome` (as read_ome gives it: without ROIs) with the segmentation's ROIs.

    `ome` itself is changed: its image refers to the new ROIs.
    """
    ome.images[0].roi_refs = [model.ROIRef(id=f"ROI:{track}") for track in segmentation.tracks]
    head = to_xml(ome, validate=False)
    # ROI elements come last in an OME element (BinaryOnly aside, which an OME-TIFF with an image lacks).
    end = head.rindex(OME_END)
    return "".join((head[:end], *roi_elements(segmentation), head[end:]))


def write_rois(path, ome, segmentation):
    """Replace the OME-XML of an OME-TIFF in place with `ome` plus the ROIs; the pixels are untouched."""
    xml = with_rois(ome, segmentation)
    validate_xml(xml)  # against the OME schema, which the text written above never went through
    tifffile.tiffcomment(path, _tiff_ascii(xml))

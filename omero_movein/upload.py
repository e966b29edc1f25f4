"""Uploading tracked-cell ROIs to an image on an OMERO server, with omero-py.

Imported only for an upload, so everything else works without omero-py.
"""

from .errors import MoveInError
from .rois import check_fits, points_text, signed_rgba, track_color

try:
    import Ice
    from omero.gateway import BlitzGateway
    from omero.model import ImageI, MaskI, PolygonI, RoiI
    from omero.rtypes import rdouble, rint, rstring
except ImportError as err:
    raise MoveInError(
        "omero-py", f"needed to upload but not importable ({err}); install the project's 'omero' extra"
    ) from err

# ROIs saved per server call: large enough to amortise the round trip, small
# enough to keep each message well under Ice's size limit.
SAVE_BATCH = 100


def _set_plane(shape, cell):
    shape.setTheT(rint(cell.t))
    if cell.z is not None:
        shape.setTheZ(rint(cell.z))
    if cell.c is not None:
        shape.setTheC(rint(cell.c))


def omero_rois(segmentation, image_id):
    """Unsaved omero.model ROIs, one per track, linked to the image; a Polygon per Mask where traced."""
    rois = []
    for track, cells in segmentation.tracks.items():
        roi = RoiI()
        roi.setImage(ImageI(image_id, False))
        roi.setName(rstring(f"track {track}"))
        color = signed_rgba(*track_color(track))
        for cell in cells:
            mask = MaskI()
            mask.setX(rdouble(cell.x))
            mask.setY(rdouble(cell.y))
            mask.setWidth(rdouble(cell.mask.shape[1]))
            mask.setHeight(rdouble(cell.mask.shape[0]))
            mask.setBytes(cell.packed_bits())
            mask.setFillColor(rint(color))
            _set_plane(mask, cell)
            roi.addShape(mask)
            if cell.outline is not None:
                polygon = PolygonI()
                polygon.setPoints(rstring(points_text(cell.outline)))
                polygon.setStrokeColor(rint(color))
                _set_plane(polygon, cell)
                roi.addShape(polygon)
        rois.append(roi)
    return rois


def save_rois(conn, image_id, segmentation):
    """Attach the ROIs to an image the connection can see; returns the new ROI ids."""
    where = f"Image:{image_id}"
    conn.SERVICE_OPTS.setOmeroGroup(-1)  # look in every group the user belongs to
    image = conn.getObject("Image", image_id)
    if image is None:
        raise MoveInError(where, "no such image, or not visible to this user")
    check_fits(
        segmentation, image.getSizeX(), image.getSizeY(), image.getSizeZ(), image.getSizeC(), image.getSizeT(), where
    )
    # Save into the image's own group, where the ROIs must live.
    conn.SERVICE_OPTS.setOmeroGroup(image.getDetails().getGroup().getId())
    update = conn.getUpdateService()
    rois = omero_rois(segmentation, image_id)
    roi_ids = []
    for start in range(0, len(rois), SAVE_BATCH):
        roi_ids.extend(update.saveAndReturnIds(rois[start : start + SAVE_BATCH], conn.SERVICE_OPTS))
    return roi_ids


def upload(host, port, user, password, image_id, segmentation):
    conn = BlitzGateway(user, password, host=host, port=port, secure=True)
    try:
        try:
            connected = conn.connect()
        except Ice.Exception as err:  # refused, unknown host, timeout, TLS failure
            raise MoveInError(f"{host}:{port}", f"cannot reach the OMERO server ({type(err).__name__})") from err
        if not connected:
            raise MoveInError(f"{host}:{port}", f"cannot log in as {user} (wrong user name or password?)")
        return save_rois(conn, image_id, segmentation)
    finally:
        conn.close()

"""The upload path, against omero-py's own model objects and, given a server, for real."""

import os
import socket

import numpy as np
import pytest

from .movein_data import DRAWN, SHAPE, drawn_masks, mask_rows, parse_points, tracked_cells, write_masks

pytest.importorskip("omero.gateway", reason="omero-py (with IcePy, zeroc-ice 3.6.5) is not installed")

from omero.gateway import ServiceOptsDict  # noqa: E402
from omero.model import MaskI, PolygonI  # noqa: E402

from omero_movein import masks2rois, rois, upload  # noqa: E402
from omero_movein.errors import MoveInError  # noqa: E402

pytestmark = pytest.mark.tools

TRACKS = {3: [0, 1, 2, 3], 5: [0, 1, 2, 3], 12: [1, 2, 3], 40000: [0, 2]}


@pytest.fixture
def segmentation(tmp_path):
    masks = tracked_cells()
    return masks, rois.segment(write_masks(tmp_path / "masks", masks), the_c=2, outlines=True)


def unpack(mask):
    width, height = int(mask.getWidth().getValue()), int(mask.getHeight().getValue())
    bits = np.unpackbits(np.frombuffer(mask.getBytes(), dtype=np.uint8))
    return bits[: width * height].reshape(height, width).astype(bool)


def test_omero_rois_hold_every_cell_on_every_frame(segmentation):
    masks, cells = segmentation

    omero_rois = upload.omero_rois(cells, image_id=51)

    assert [roi.getName().getValue() for roi in omero_rois] == [f"track {track}" for track in TRACKS]
    for roi, (track, frames) in zip(omero_rois, TRACKS.items(), strict=True):
        assert roi.getImage().getId().getValue() == 51
        assert roi.getId() is None  # new, for the server to save
        mask_shapes = [shape for shape in roi.copyShapes() if isinstance(shape, MaskI)]
        polygon_shapes = [shape for shape in roi.copyShapes() if isinstance(shape, PolygonI)]
        assert [shape.getTheT().getValue() for shape in mask_shapes] == frames
        assert [shape.getTheT().getValue() for shape in polygon_shapes] == frames
        for shape in mask_shapes:
            assert shape.getTheC().getValue() == 2
            assert shape.getTheZ() is None
            x, y = int(shape.getX().getValue()), int(shape.getY().getValue())
            pasted = np.zeros(SHAPE, dtype=bool)
            cell = unpack(shape)
            pasted[y : y + cell.shape[0], x : x + cell.shape[1]] = cell
            np.testing.assert_array_equal(pasted, masks[shape.getTheT().getValue()] == track)
            # Signed 32-bit RGBA, alpha in the low byte.
            assert shape.getFillColor().getValue() & 0xFF == 128
        for shape in polygon_shapes:
            points = shape.getPoints().getValue().split()
            assert len(points) >= 4 and all(len(point.split(",")) == 2 for point in points)


def test_omero_shapes_match_the_drawn_cells_at_exact_coordinates(tmp_path):
    segmentation = rois.segment(write_masks(tmp_path / "masks", drawn_masks()), outlines=True)

    omero_rois = upload.omero_rois(segmentation, image_id=51)

    colors = {}
    for roi in omero_rois:
        track = int(roi.getName().getValue().removeprefix("track "))
        frames = DRAWN[track]
        shapes = roi.copyShapes()
        masks = {shape.getTheT().getValue(): shape for shape in shapes if isinstance(shape, MaskI)}
        polygons = {shape.getTheT().getValue(): shape for shape in shapes if isinstance(shape, PolygonI)}
        assert sorted(masks) == sorted(polygons) == sorted(frames)
        for t, (_, box, rows, outline) in frames.items():
            mask = masks[t]
            written_box = (mask.getX(), mask.getY(), mask.getWidth(), mask.getHeight())
            assert tuple(value.getValue() for value in written_box) == box
            np.testing.assert_array_equal(unpack(mask), mask_rows(rows))
            assert parse_points(polygons[t].getPoints().getValue()) == [(float(x), float(y)) for x, y in outline]
        shape_colors = {shape.getFillColor().getValue() for shape in masks.values()}
        shape_colors |= {shape.getStrokeColor().getValue() for shape in polygons.values()}
        assert len(shape_colors) == 1, f"track {track} has several colours"
        colors[track] = shape_colors.pop()
    assert sorted(colors) == sorted(DRAWN)
    assert len(set(colors.values())) == len(DRAWN)


def test_colors_are_packed_into_a_signed_int():
    assert rois.signed_rgba(255, 0, 0, 255) == -16776961  # 0xFF0000FF as a Java int
    assert rois.signed_rgba(0, 255, 0, 128) == 0x00FF0080


class FakeImage:
    def __init__(self, size_x, size_y, size_z=1, size_c=3, size_t=4, group_id=7):
        self.sizes = (size_x, size_y, size_z, size_c, size_t)
        self.group_id = group_id

    def getSizeX(self):
        return self.sizes[0]

    def getSizeY(self):
        return self.sizes[1]

    def getSizeZ(self):
        return self.sizes[2]

    def getSizeC(self):
        return self.sizes[3]

    def getSizeT(self):
        return self.sizes[4]

    def getDetails(self):
        group = type("Group", (), {"getId": lambda _: self.group_id})()
        return type("Details", (), {"getGroup": lambda _: group})()


class FakeConnection:
    """Stands in for BlitzGateway; records what the update service is asked to save."""

    def __init__(self, image):
        self.SERVICE_OPTS = ServiceOptsDict()
        self.image = image
        self.saved = []  # (rois, group in the call's context)
        self.asked_in_group = None

    def getObject(self, kind, object_id):
        assert kind == "Image"
        self.asked_in_group = self.SERVICE_OPTS.getOmeroGroup()
        return self.image if object_id == 51 else None

    def getUpdateService(self):
        connection = self

        class UpdateService:
            def saveAndReturnIds(self, rois, context):
                connection.saved.append((list(rois), context.getOmeroGroup()))
                first = 1000 + sum(len(batch) for batch, _ in connection.saved[:-1])
                return list(range(first, first + len(rois)))

        return UpdateService()


def test_save_rois_in_batches_into_the_images_group(segmentation, monkeypatch):
    monkeypatch.setattr(upload, "SAVE_BATCH", 3)
    connection = FakeConnection(FakeImage(SHAPE[1], SHAPE[0], group_id=7))

    roi_ids = upload.save_rois(connection, 51, segmentation[1])

    assert roi_ids == [1000, 1001, 1002, 1003]
    assert connection.asked_in_group == "-1"  # found in whichever group it is in
    assert [len(batch) for batch, _ in connection.saved] == [3, 1]
    assert {group for _, group in connection.saved} == {"7"}
    saved = [roi for batch, _ in connection.saved for roi in batch]
    assert [roi.getName().getValue() for roi in saved] == [f"track {track}" for track in TRACKS]
    assert all(roi.getImage().getId().getValue() == 51 for roi in saved)


def test_save_rois_refuses_a_missing_image_or_one_the_masks_do_not_fit(segmentation):
    with pytest.raises(MoveInError, match="Image:52: no such image"):
        upload.save_rois(FakeConnection(FakeImage(*SHAPE[::-1])), 52, segmentation[1])
    with pytest.raises(MoveInError, match="Image:51: image is 24x40 but the masks are 40x24"):
        upload.save_rois(FakeConnection(FakeImage(*SHAPE)), 51, segmentation[1])
    with pytest.raises(MoveInError, match="Image:51: track 3 is on t=3 but the image has 3"):
        upload.save_rois(FakeConnection(FakeImage(*SHAPE[::-1], size_t=3)), 51, segmentation[1])


def test_unreachable_server_is_reported_without_the_password(tmp_path, monkeypatch, capsys):
    with socket.socket() as probe:  # a local port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("OMERO_PASSWORD", "never-printed")
    folder = write_masks(tmp_path / "masks", tracked_cells())

    code = masks2rois.main(
        [str(folder), "--host", "127.0.0.1", "--port", str(port), "--user", "alice", "--image-id", "1"]
    )

    assert code == 2
    printed = capsys.readouterr()
    assert printed.err.startswith(
        f"error: 127.0.0.1:{port}: cannot reach the OMERO server (ConnectionRefusedException)"
    )
    assert "never-printed" not in printed.err + printed.out


@pytest.mark.skipif(
    not os.environ.get("OMERO_TEST_HOST"),
    reason="no OMERO server: set OMERO_TEST_HOST (and OMERO_TEST_USER, OMERO_PASSWORD)",
)
def test_live_upload_to_a_real_server(tmp_path, capsys):
    from omero.gateway import BlitzGateway

    host = os.environ["OMERO_TEST_HOST"]
    port = int(os.environ.get("OMERO_TEST_PORT", "4064"))
    user = os.environ.get("OMERO_TEST_USER", "root")
    conn = BlitzGateway(user, os.environ["OMERO_PASSWORD"], host=host, port=port, secure=True)
    assert conn.connect(), f"cannot log in to {host}:{port} as {user}"
    planes = (np.zeros(SHAPE, np.uint8) for _ in range(4))
    image = conn.createImageFromNumpySeq(planes, "omero-movein live test", sizeZ=1, sizeC=1, sizeT=4)
    try:
        masks = tracked_cells()
        folder = write_masks(tmp_path / "masks", masks)

        code = masks2rois.main(
            [str(folder), "--host", host, "--port", str(port), "--user", user, "--image-id", str(image.getId())]
        )

        assert code == 0, capsys.readouterr().err
        result = conn.getRoiService().findByImage(image.getId(), None)
        by_name = {roi.getName().getValue(): roi for roi in result.rois}
        assert sorted(by_name) == sorted(f"track {track}" for track in TRACKS)
        for track, frames in TRACKS.items():
            shapes = by_name[f"track {track}"].copyShapes()
            assert sorted(shape.getTheT().getValue() for shape in shapes) == frames
            for shape in shapes:
                x, y = int(shape.getX().getValue()), int(shape.getY().getValue())
                pasted = np.zeros(SHAPE, dtype=bool)
                cell = unpack(shape)
                pasted[y : y + cell.shape[0], x : x + cell.shape[1]] = cell
                np.testing.assert_array_equal(pasted, masks[shape.getTheT().getValue()] == track)
    finally:
        conn.deleteObjects("Image", [image.getId()], deleteAnns=True, deleteChildren=True, wait=True)
        conn.close()

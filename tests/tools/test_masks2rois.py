import sys

import imageio.v3 as iio
import numpy as np
import pytest
import tifffile
from ome_types import from_xml

from omero_movein import masks2rois, png2tiff, rois
from omero_movein.errors import MoveInError

from .movein_data import SHAPE, decode_mask, tracked_cells, write_masks, write_position

pytestmark = pytest.mark.tools

TRACKS = {3: [0, 1, 2, 3], 5: [0, 1, 2, 3], 12: [1, 2, 3], 40000: [0, 2]}


@pytest.fixture
def position(tmp_path):
    """An OME-TIFF of 4 timepoints made by omero-png2tiff, its source planes, and its masks."""
    planes = write_position(tmp_path / "pos01", size_t=4)
    image = tmp_path / "pos01.ome.tif"
    assert png2tiff.main([str(tmp_path / "pos01"), str(image), "--jobs", "1"]) == 0
    masks = tracked_cells()
    return image, planes, masks, write_masks(tmp_path / "masks" / "pos01", masks)


def read_ome(path):
    with tifffile.TiffFile(path) as tif:
        return from_xml(tif.ome_metadata, validate=True)


def test_cells_in_frame_matches_a_per_label_search():
    rng = np.random.default_rng(7)
    labels = rng.choice(np.array([0, 0, 0, 1, 2, 9, 300, 65535], dtype=np.uint16), size=(50, 70))

    found = {label: (x, y, mask) for label, x, y, mask in rois.cells_in_frame(labels)}

    assert sorted(found) == [1, 2, 9, 300, 65535]
    for label, (x, y, mask) in found.items():
        rows, columns = np.nonzero(labels == label)
        assert (x, y) == (columns.min(), rows.min())
        assert mask.shape == (rows.max() - rows.min() + 1, columns.max() - columns.min() + 1)
        np.testing.assert_array_equal(mask, labels[y : y + mask.shape[0], x : x + mask.shape[1]] == label)


def test_rois_round_trip_through_the_ome_tiff(position, capsys):
    image, planes, masks, mask_folder = position

    assert masks2rois.main([str(mask_folder), "--tiff", str(image), "--polygons", "--channel", "1"]) == 0

    assert f"{image}: wrote 4 tracks, 13 cell shapes" in capsys.readouterr().out
    ome = read_ome(image)
    assert [roi.id for roi in ome.rois] == [f"ROI:{track}" for track in TRACKS]
    assert [roi.name for roi in ome.rois] == [f"track {track}" for track in TRACKS]
    assert [ref.id for ref in ome.images[0].roi_refs] == [roi.id for roi in ome.rois]
    for roi in ome.rois:
        track = int(roi.id.split(":")[1])
        assert sorted(mask.the_t for mask in roi.union.masks) == TRACKS[track]
        assert sorted(polygon.the_t for polygon in roi.union.polygons) == TRACKS[track]
        for mask in roi.union.masks:
            assert (mask.the_c, mask.the_z) == (1, None)
            expected = masks[mask.the_t] == track
            rows, columns = np.nonzero(expected)
            assert (mask.x, mask.y) == (columns.min(), rows.min())
            decoded = np.zeros(SHAPE, dtype=bool)
            decoded[int(mask.y) : int(mask.y + mask.height), int(mask.x) : int(mask.x + mask.width)] = decode_mask(mask)
            np.testing.assert_array_equal(decoded, expected)
            assert mask.fill_color.as_rgb_tuple()[3] == pytest.approx(0.5, abs=0.01)
        for polygon in roi.union.polygons:
            corners = [tuple(map(int, point.split(","))) for point in polygon.points.split()]
            xs, ys = np.array(corners).T
            area = abs(np.dot(xs, np.roll(ys, -1)) - np.dot(ys, np.roll(xs, -1))) / 2
            # Every cell here is one 8-connected piece without holes, so its outline holds all its pixels.
            assert area == (masks[polygon.the_t] == track).sum()
    # The pixels are untouched by the rewrite of the OME-XML.
    with tifffile.TiffFile(image) as tif:
        pages = [page.asarray() for page in tif.pages]
    expected_planes = [planes[c, t, z] for t in range(4) for c in ("DAPI", "GFP", "mCherry") for z in range(2)]
    assert len(pages) == len(expected_planes)
    for page, plane in zip(pages, expected_planes, strict=True):
        np.testing.assert_array_equal(page, plane)


def test_an_ome_tiff_written_by_another_tool_gets_the_rois(tmp_path):
    image = tmp_path / "other.ome.tif"
    tifffile.imwrite(image, np.zeros((4, 2, 1, *SHAPE), np.uint8), metadata={"axes": "TCZYX"})
    masks_folder = write_masks(tmp_path / "masks", tracked_cells())

    assert masks2rois.main([str(masks_folder), "--tiff", str(image), "--z", "0"]) == 0

    ome = read_ome(image)
    assert len(ome.rois) == 4
    assert all(mask.the_z == 0 and mask.the_c is None for roi in ome.rois for mask in roi.union.masks)
    with tifffile.TiffFile(image) as tif:
        assert tif.series[0].get_shape(False)[:5] == (4, 2, 1, *SHAPE)


def test_replace_rois_replaces_instead_of_adding(position, capsys):
    image, _, _, mask_folder = position
    assert masks2rois.main([str(mask_folder), "--tiff", str(image)]) == 0

    assert masks2rois.main([str(mask_folder), "--tiff", str(image)]) == 2
    assert f"error: {image}: already holds 4 ROIs (use --replace-rois to replace them)" in capsys.readouterr().err

    assert masks2rois.main([str(mask_folder), "--tiff", str(image), "--replace-rois", "--polygons"]) == 0
    ome = read_ome(image)
    assert len(ome.rois) == 4 and len(ome.images[0].roi_refs) == 4
    assert all(len(roi.union.polygons) == len(roi.union.masks) for roi in ome.rois)


def test_frame_and_z_from_a_custom_pattern(tmp_path):
    masks = tracked_cells(frames=2)
    folder = tmp_path / "masks"
    folder.mkdir()
    for t, labels in enumerate(masks):
        for z in range(2):
            iio.imwrite(folder / f"seg_z{z}_t{t}.png", labels)

    segmentation = rois.segment(folder, r"seg_z(?P<z>\d+)_t(?P<t>\d+)\.png")

    assert sorted((shape.t, shape.z) for shape in segmentation.tracks[3]) == [(0, 0), (0, 1), (1, 0), (1, 1)]


def test_masks_named_like_micro_manager_2_planes(tmp_path):
    masks = tracked_cells(frames=3)
    folder = tmp_path / "masks"
    folder.mkdir()
    for t, labels in enumerate(masks):
        # The number before the extension is z here, not the frame: the naming must be recognised.
        iio.imwrite(folder / f"img_channel000_position000_time{t:09d}_z001.png", labels)

    segmentation = rois.segment(folder)

    assert [(shape.t, shape.z) for shape in segmentation.tracks[3]] == [(0, 1), (1, 1), (2, 1)]


def run_expecting_error(capsys, *argv):
    assert masks2rois.main([str(arg) for arg in argv]) == 2
    error = capsys.readouterr().err
    assert error.startswith("error: ")
    return error


def test_masks_of_another_size_than_the_image(position, tmp_path, capsys):
    image, _, _, _ = position
    folder = write_masks(tmp_path / "big", [np.pad(labels, 1) for labels in tracked_cells()])
    before = tifffile.tiffcomment(image)

    error = run_expecting_error(capsys, folder, "--tiff", image)

    assert f"error: {image}: image is 40x24 but the masks are 42x26" in error
    assert tifffile.tiffcomment(image) == before


def test_frame_beyond_the_image_timepoints(position, tmp_path, capsys):
    image, _, _, _ = position
    folder = write_masks(tmp_path / "long", tracked_cells(frames=5))

    error = run_expecting_error(capsys, folder, "--tiff", image)

    assert f"error: {image}: track 3 is on t=4 but the image has 4 (t=0..3)" in error


def test_channel_beyond_the_image_channels(position, capsys):
    image, _, _, mask_folder = position

    error = run_expecting_error(capsys, mask_folder, "--tiff", image, "--channel", "3")

    assert "but the image has 3 (c=0..2)" in error


def test_mask_sizes_must_agree(tmp_path, capsys):
    masks = tracked_cells()
    masks[2] = masks[2][:, :-1]
    folder = write_masks(tmp_path / "masks", masks)

    error = run_expecting_error(capsys, folder, "--tiff", tmp_path / "any.ome.tif")

    assert f"error: {folder / 'mask_0002.png'}: size 39x24 differs from the first mask's 40x24" in error


def test_float_masks_are_refused(tmp_path, capsys):
    folder = tmp_path / "masks"
    folder.mkdir()
    tifffile.imwrite(folder / "mask_0.tif", np.ones(SHAPE, np.float32))

    error = run_expecting_error(capsys, folder, "--tiff", tmp_path / "any.ome.tif")

    assert f"error: {folder / 'mask_0.tif'}: label masks must have integer pixels, not float32" in error


def test_unreadable_mask_is_named(tmp_path, capsys):
    folder = write_masks(tmp_path / "masks", tracked_cells())
    (folder / "mask_0001.png").write_bytes(b"garbage")

    error = run_expecting_error(capsys, folder, "--tiff", tmp_path / "any.ome.tif")

    assert f"error: {folder / 'mask_0001.png'}: unreadable image" in error


def test_empty_masks_and_unmatched_names(tmp_path, capsys):
    empty = write_masks(tmp_path / "empty", [np.zeros(SHAPE, np.uint16)])
    assert f"error: {empty}: no cell in any mask" in run_expecting_error(
        capsys, empty, "--tiff", tmp_path / "x.ome.tif"
    )

    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("")
    error = run_expecting_error(capsys, tmp_path / "other", "--tiff", tmp_path / "x.ome.tif")
    assert f"error: {tmp_path / 'other'}: no file name matches the pattern" in error


def test_not_an_ome_tiff(tmp_path, capsys):
    plain = tmp_path / "plain.tif"
    tifffile.imwrite(plain, np.zeros(SHAPE, np.uint8), description="just a tiff", metadata=None)
    folder = write_masks(tmp_path / "masks", tracked_cells())

    error = run_expecting_error(capsys, folder, "--tiff", plain)

    assert f"error: {plain}: not an OME-TIFF" in error


def test_command_needs_a_destination(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        masks2rois.main([str(tmp_path)])
    assert exit_info.value.code == 2
    assert "give --tiff, --host, or both" in capsys.readouterr().err


def test_everything_but_the_upload_works_without_omero_py(position, monkeypatch, capsys):
    image, _, _, mask_folder = position
    for module in ("omero", "omero.gateway", "omero.model", "omero.rtypes"):
        monkeypatch.setitem(sys.modules, module, None)  # makes any import of it fail
    monkeypatch.delitem(sys.modules, "omero_movein.upload", raising=False)
    monkeypatch.setenv("OMERO_PASSWORD", "unused")

    assert masks2rois.main([str(mask_folder), "--tiff", str(image)]) == 0
    assert len(read_ome(image).rois) == 4

    error = run_expecting_error(capsys, mask_folder, "--host", "localhost", "--user", "alice", "--image-id", "1")
    assert error.startswith("error: omero-py: needed to upload but not importable")


def test_password_comes_from_the_environment_or_a_terminal(monkeypatch):
    monkeypatch.setenv("OMERO_PASSWORD", "s3cret")
    assert masks2rois._password("alice", "omero.example.org") == "s3cret"

    monkeypatch.delenv("OMERO_PASSWORD")
    monkeypatch.setattr(sys.stdin, "isatty", lambda: False)
    with pytest.raises(MoveInError, match="not set, and there is no terminal"):
        masks2rois._password("alice", "omero.example.org")

"""ROIs in the OME-TIFF compared with cells drawn by hand, at exact coordinates.

The upload's shapes get the same checks in test_upload (they need omero-py).
"""

import numpy as np
import pytest
import tifffile
from ome_types import from_xml

from omero_movein import masks2rois, rois
from omero_movein.outline import frame_outlines, trace_outline

from .movein_data import DRAWN, SHAPE, decode_mask, drawn_masks, mask_rows, parse_points, write_masks

pytestmark = pytest.mark.tools


@pytest.fixture
def drawn_rois(tmp_path):
    """{track: ROI} that omero-masks2rois wrote, with polygons, for the drawn cells, as read back and validated."""
    image = tmp_path / "image.ome.tif"
    tifffile.imwrite(image, np.zeros((2, 1, 1, *SHAPE), np.uint8), metadata={"axes": "TCZYX"})
    folder = write_masks(tmp_path / "masks", drawn_masks())
    assert masks2rois.main([str(folder), "--tiff", str(image), "--polygons"]) == 0
    with tifffile.TiffFile(image) as tif:
        ome = from_xml(tif.ome_metadata, validate=True)
    return {int(roi.name.removeprefix("track ")): roi for roi in ome.rois}


def test_polygons_follow_each_cells_pixel_edges_at_exact_coordinates(drawn_rois):
    written = {
        (track, polygon.the_t): parse_points(polygon.points)
        for track, roi in drawn_rois.items()
        for polygon in roi.union.polygons
    }

    assert written == {
        (track, t): [(float(x), float(y)) for x, y in outline]
        for track, frames in DRAWN.items()
        for t, (_, _, _, outline) in frames.items()
    }


def test_masks_hold_each_cells_bounding_box_and_pixels(drawn_rois):
    written = {
        (track, mask.the_t): ((mask.x, mask.y, mask.width, mask.height), decode_mask(mask))
        for track, roi in drawn_rois.items()
        for mask in roi.union.masks
    }

    assert sorted(written) == sorted((track, t) for track, frames in DRAWN.items() for t in frames)
    for (track, t), (box, bits) in written.items():
        _, expected_box, rows, _ = DRAWN[track][t]
        assert box == expected_box
        np.testing.assert_array_equal(bits, mask_rows(rows))


def test_each_track_has_a_colour_of_its_own(drawn_rois):
    colors = {}
    for track, roi in drawn_rois.items():
        shape_colors = {mask.fill_color.as_rgb_tuple() for mask in roi.union.masks}
        shape_colors |= {polygon.stroke_color.as_rgb_tuple() for polygon in roi.union.polygons}
        assert len(shape_colors) == 1, f"track {track} has several colours"
        colors[track] = shape_colors.pop()

    assert len(set(colors.values())) == len(DRAWN)
    assert all(color[3] == pytest.approx(0.5, abs=0.01) for color in colors.values())


def test_track_colours_are_distinct_for_thousands_of_tracks():
    assert len({rois.track_color(track) for track in range(1, 5001)}) == 5000


def test_segmentation_holds_the_drawn_cells_in_image_coordinates(tmp_path):
    segmentation = rois.segment(write_masks(tmp_path / "masks", drawn_masks()), outlines=True)

    for track, frames in DRAWN.items():
        cells = {cell.t: cell for cell in segmentation.tracks[track]}
        assert sorted(cells) == sorted(frames)
        for t, (_, (x, y, width, height), rows, outline) in frames.items():
            cell = cells[t]
            assert (cell.x, cell.y, cell.mask.shape) == (x, y, (height, width))
            np.testing.assert_array_equal(cell.mask, mask_rows(rows))
            assert cell.outline.tolist() == [list(corner) for corner in outline]


def test_a_frames_outlines_are_each_labels_own():
    """Neighbouring labels do not change an outline: the frame at once equals each label alone."""
    rng = np.random.default_rng(3)
    labels = np.zeros((60, 90), np.uint32)
    for label in rng.choice(2**20, 40, replace=False):
        y, x = rng.integers(0, 55), rng.integers(0, 85)
        height, width = rng.integers(1, 6, 2)
        labels[y : y + height, x : x + width] = label
        labels[rng.integers(0, 60, 3), rng.integers(0, 90, 3)] = label  # stray pixels: other pieces

    outlines = frame_outlines(labels)

    assert sorted(outlines) == sorted(set(np.unique(labels).tolist()) - {0})
    for label, corners in outlines.items():
        assert [tuple(corner) for corner in corners.tolist()] == trace_outline(labels == label)

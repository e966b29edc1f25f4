import subprocess
import sys
import threading
import tracemalloc
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import tifffile
from ome_types import from_xml

from omero_movein import conversion, png2tiff, positions
from omero_movein.errors import MoveInError

from .movein_data import (
    CHANNELS,
    POSITIONS,
    SHAPE,
    mm2_plane_file,
    plane_file,
    write_mm_metadata,
    write_position,
)

pytestmark = pytest.mark.tools


def read_back(path):
    """(pages as arrays, validated OME metadata) of an OME-TIFF."""
    with tifffile.TiffFile(path) as tif:
        assert tif.is_ome
        pages = [page.asarray() for page in tif.pages]
        return pages, from_xml(tif.ome_metadata, validate=True)


def xyzct(planes, channels=CHANNELS):
    """Source planes in the file's plane order: z fastest, then channel, then time."""
    size_t = 1 + max(t for _, t, _ in planes)
    size_z = 1 + max(z for _, _, z in planes)
    return [planes[c, t, z] for t in range(size_t) for c in channels for z in range(size_z)]


def assert_same_planes(pages, expected):
    assert len(pages) == len(expected)
    for page, plane in zip(pages, expected, strict=True):
        assert page.dtype == plane.dtype
        np.testing.assert_array_equal(page, plane)


def leftovers(folder):
    return sorted(p.name for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def test_position_round_trip_keeps_every_plane_and_the_metadata(tmp_path):
    planes = write_position(tmp_path / "pos01")
    output = tmp_path / "pos01.ome.tif"

    code = png2tiff.main(
        [str(tmp_path / "pos01"), str(output), "--pixel-size", "0.65", "--z-step", "2.5", "--time-increment", "300"]
    )

    assert code == 0
    pages, ome = read_back(output)
    assert_same_planes(pages, xyzct(planes))
    pixels = ome.images[0].pixels
    assert (pixels.size_x, pixels.size_y, pixels.size_z, pixels.size_c, pixels.size_t) == (SHAPE[1], SHAPE[0], 2, 3, 3)
    assert pixels.dimension_order.value == "XYZCT"
    assert pixels.type.value == "uint16"
    assert [channel.name for channel in pixels.channels] == ["DAPI", "GFP", "mCherry"]
    assert (pixels.physical_size_x, pixels.physical_size_y, pixels.physical_size_z) == (0.65, 0.65, 2.5)
    assert pixels.physical_size_x_unit.value == "µm"
    assert pixels.time_increment == 300
    assert pixels.time_increment_unit.value == "s"
    assert ome.images[0].name == "pos01"
    # tifffile reads the OME-XML to shape the series as the 5-D image it is.
    with tifffile.TiffFile(output) as tif:
        series = tif.series[0]
        assert series.get_axes(False)[:5] == "TCZYX"
        assert series.get_shape(False)[:5] == (3, 3, 2, *SHAPE)


def test_tree_is_mirrored_one_ome_tiff_per_position_in_parallel(lab_tree, tmp_path, capsys):
    root, written = lab_tree
    output = tmp_path / "out"

    code = png2tiff.main([str(root), str(output), "--jobs", "2"])

    assert code == 0
    assert leftovers(output) == ["pos01.ome.tif", "pos02.ome.tif", "pos07.ome.tif"]
    for position, planes in written.items():
        pages, ome = read_back(output / f"{position}.ome.tif")
        assert_same_planes(pages, xyzct(planes))
        assert ome.images[0].name == position
    printed = capsys.readouterr().out
    assert all(position in printed for position in POSITIONS)


def test_tiled_compressed_output_reads_back_exactly(tmp_path):
    planes = write_position(tmp_path / "pos", shape=(40, 56))  # 56 is no multiple of 16: edge tiles
    output = tmp_path / "pos.ome.tiff"

    assert png2tiff.main([str(tmp_path / "pos"), str(output), "--tile", "16", "--compression", "zlib"]) == 0

    with tifffile.TiffFile(output) as tif:
        page = tif.pages[0]
        assert page.is_tiled and (page.tilelength, page.tilewidth) == (16, 16)
        assert page.compression == tifffile.COMPRESSION.ADOBE_DEFLATE
    pages, _ = read_back(output)
    assert_same_planes(pages, xyzct(planes))


def test_uint8_planes_and_a_custom_pattern_with_numbered_channels(tmp_path):
    def name(t, channel, z):
        return f"pos3-ch{channel}-T{t + 1}.png"  # 1-based frames, no z

    planes = write_position(tmp_path / "pos3", channels=("1", "0"), size_z=1, dtype=np.uint8, name=name)
    output = tmp_path / "pos3.ome.tif"

    code = png2tiff.main(
        [
            str(tmp_path / "pos3"),
            str(output),
            "--pattern",
            r"pos3-ch(?P<c>\d+)-T(?P<t>\d+)\.png",
            "--channel-names",
            "brightfield,GFP",
        ]
    )

    assert code == 0
    pages, ome = read_back(output)
    assert_same_planes(pages, xyzct(planes, channels=("0", "1")))
    pixels = ome.images[0].pixels
    assert pixels.type.value == "uint8"
    assert (pixels.size_z, pixels.size_c, pixels.size_t) == (1, 2, 3)
    assert [channel.name for channel in pixels.channels] == ["brightfield", "GFP"]


def test_channels_option_sets_the_channel_order(tmp_path):
    planes = write_position(tmp_path / "pos", size_t=1, size_z=1)
    output = tmp_path / "pos.ome.tif"

    assert png2tiff.main([str(tmp_path / "pos"), str(output), "--channels", "mCherry,DAPI,GFP"]) == 0

    pages, ome = read_back(output)
    assert_same_planes(pages, xyzct(planes, channels=("mCherry", "DAPI", "GFP")))
    assert [channel.name for channel in ome.images[0].pixels.channels] == ["mCherry", "DAPI", "GFP"]


def test_dry_run_prints_what_it_inferred_and_writes_nothing(lab_tree, tmp_path, capsys):
    root, _ = lab_tree

    assert png2tiff.main([str(root), str(tmp_path / "out"), "--dry-run"]) == 0

    printed = capsys.readouterr().out
    assert (
        printed.count(
            "names: Micro-Manager 1.4; X=40 Y=24 Z=2 C=3 T=3 uint16; "
            "channels: DAPI, GFP, mCherry from file names (18 planes, 1 other files ignored)"
        )
        == 3
    )
    assert f"alice/2019-05-01/pos02 -> {tmp_path / 'out' / 'alice/2019-05-01/pos02.ome.tif'}" in printed
    assert not (tmp_path / "out").exists()


def test_planes_are_streamed_not_held_in_memory(tmp_path):
    write_position(tmp_path / "pos", channels=("DAPI",), size_t=10, size_z=4, shape=(256, 256))
    series_bytes = 40 * 256 * 256 * 2

    tracemalloc.start()
    try:
        [position] = positions.find_positions(tmp_path / "pos")
        conversion.convert_position(position, tmp_path / "pos.ome.tif", "pos", positions.Options(jobs=2))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert (tmp_path / "pos.ome.tif").stat().st_size > series_bytes
    assert peak < series_bytes / 4


def test_micro_manager_2_position_folders_convert_without_a_pattern(tmp_path, capsys):
    root = tmp_path / "acq_1"
    planes = {}
    for position in (0, 1):
        folder = root / f"Pos{position}"
        planes[position] = write_position(
            folder, channels=("0", "1"), size_t=2, name=mm2_plane_file(position), seed=position
        )
        write_mm_metadata(folder, ["DAPI", "GFP"])

    assert png2tiff.main([str(root), str(tmp_path / "out"), "--dry-run"]) == 0
    assert (
        capsys.readouterr().out.count(
            "names: Micro-Manager 2.0; X=40 Y=24 Z=2 C=2 T=2 uint16; channels: DAPI, GFP from metadata.txt "
            "(8 planes, 1 other files ignored)"
        )
        == 2
    )

    assert png2tiff.main([str(root), str(tmp_path / "out")]) == 0

    assert leftovers(tmp_path / "out") == ["Pos0.ome.tif", "Pos1.ome.tif"]
    for position in (0, 1):
        pages, ome = read_back(tmp_path / "out" / f"Pos{position}.ome.tif")  # the tree under acq_1, mirrored
        assert_same_planes(pages, xyzct(planes[position], channels=("0", "1")))
        assert [channel.name for channel in ome.images[0].pixels.channels] == ["DAPI", "GFP"]
        assert ome.images[0].name == f"Pos{position}"


def test_micro_manager_2_positions_in_one_folder_become_one_image_each(tmp_path):
    folder = tmp_path / "acq"
    planes = {position: write_position(folder, size_t=2, channels=("0", "1", "2"), name=mm2_plane_file(position),
                                       seed=position) for position in (0, 3)}  # fmt: skip

    assert png2tiff.main([str(folder), str(tmp_path / "out")]) == 0

    for position in (0, 3):
        pages, ome = read_back(tmp_path / "out" / "acq" / f"Pos{position}.ome.tif")
        assert_same_planes(pages, xyzct(planes[position], channels=("0", "1", "2")))
        assert ome.images[0].name == f"acq/Pos{position}"
        # No metadata.txt naming them: the numbers are the names.
        assert [channel.name for channel in ome.images[0].pixels.channels] == ["0", "1", "2"]


def test_micro_manager_1_4_channels_in_the_metadata_files_order(tmp_path, capsys):
    planes = write_position(tmp_path / "pos", size_t=1)
    write_mm_metadata(tmp_path / "pos", ["mCherry", "DAPI", "GFP"])

    assert png2tiff.main([str(tmp_path / "pos"), str(tmp_path / "pos.ome.tif")]) == 0

    pages, ome = read_back(tmp_path / "pos.ome.tif")
    assert_same_planes(pages, xyzct(planes, channels=("mCherry", "DAPI", "GFP")))
    assert [channel.name for channel in ome.images[0].pixels.channels] == ["mCherry", "DAPI", "GFP"]


def test_a_broken_metadata_file_leaves_the_names_to_the_file_names(tmp_path, capsys):
    write_position(tmp_path / "pos", channels=("0", "1"), size_t=1, name=mm2_plane_file())
    (tmp_path / "pos" / "metadata.txt").write_text('{"Summary": {"ChNames": ["DAPI", ')  # cut short

    assert png2tiff.main([str(tmp_path / "pos"), str(tmp_path / "out"), "--dry-run"]) == 0

    assert "channels: 0, 1 from file names" in capsys.readouterr().out


def test_both_micro_manager_namings_in_one_folder_need_a_pattern(tmp_path, capsys):
    write_position(tmp_path / "pos", size_t=1, size_z=1)
    write_position(tmp_path / "pos", channels=("0",), size_t=1, size_z=1, name=mm2_plane_file())

    assert png2tiff.main([str(tmp_path / "pos"), str(tmp_path / "out")]) == 2

    assert (
        f"error: {tmp_path / 'pos'}: file names of both Micro-Manager 2.0 and Micro-Manager 1.4; "
        "give --pattern to choose" in capsys.readouterr().err
    )


def test_planes_are_decoded_by_several_threads_at_once(tmp_path, monkeypatch):
    planes = write_position(tmp_path / "pos", size_t=2)
    # Each decode waits until another thread is decoding too: one decoder alone would break the barrier.
    together = threading.Barrier(2, timeout=10)
    decode = conversion.read_plane

    def decode_beside_another(path, shape, dtype):
        together.wait()
        return decode(path, shape, dtype)

    monkeypatch.setattr(conversion, "read_plane", decode_beside_another)

    assert png2tiff.main([str(tmp_path / "pos"), str(tmp_path / "pos.ome.tif"), "--jobs", "2"]) == 0

    assert_same_planes(read_back(tmp_path / "pos.ome.tif")[0], xyzct(planes))


# Bad input: each fails with exit code 2 and "error: <file>: <problem>", and leaves no output.


def convert_expecting_error(source, output, capsys, *options):
    code = png2tiff.main([str(source), str(output), "--jobs", "1", *options])
    assert code == 2
    error = capsys.readouterr().err
    assert error.startswith("error: ")
    assert leftovers(output.parent if output.suffix else output) == []
    return error


def test_missing_plane_names_the_folder_and_the_plane(tmp_path, capsys):
    write_position(tmp_path / "pos")
    (tmp_path / "pos" / plane_file(1, "GFP", 0)).unlink()

    error = convert_expecting_error(tmp_path / "pos", tmp_path / "out", capsys)

    assert f"error: {tmp_path / 'pos'}: missing plane: no file for c=GFP, t=1, z=0" in error


def test_missing_timepoint_in_every_channel_is_a_missing_plane(tmp_path, capsys):
    write_position(tmp_path / "pos")
    for channel in CHANNELS:
        for z in range(2):
            (tmp_path / "pos" / plane_file(1, channel, z)).unlink()

    error = convert_expecting_error(tmp_path / "pos", tmp_path / "out", capsys)

    assert "missing plane: no file for t=1 (found t=0..2)" in error


@pytest.mark.parametrize(
    ("bad_plane", "problem"),
    [
        (np.zeros((SHAPE[0], SHAPE[1] + 1), np.uint16), "size 41x24 differs from the first plane's 40x24"),
        (np.zeros(SHAPE, np.uint8), "pixel type uint8 differs from the first plane's uint16"),
        (np.zeros((*SHAPE, 3), np.uint8), "not a single-channel grayscale image"),
    ],
    ids=["size", "pixel-type", "rgb"],
)
def test_plane_unlike_the_first_is_named(tmp_path, capsys, bad_plane, problem):
    write_position(tmp_path / "pos")
    bad_file = tmp_path / "pos" / plane_file(2, "GFP", 1)
    iio.imwrite(bad_file, bad_plane)

    error = convert_expecting_error(tmp_path / "pos", tmp_path / "out", capsys)

    assert f"error: {bad_file}: {problem}" in error


def test_dry_run_checks_every_plane_header(tmp_path, capsys):
    write_position(tmp_path / "pos")
    bad_file = tmp_path / "pos" / plane_file(2, "DAPI", 0)
    iio.imwrite(bad_file, np.zeros((SHAPE[0] + 2, SHAPE[1]), np.uint16))

    assert png2tiff.main([str(tmp_path / "pos"), str(tmp_path / "out"), "--dry-run"]) == 2

    assert f"error: {bad_file}: size 40x26 differs from the first plane's 40x24" in capsys.readouterr().err


@pytest.mark.parametrize("content", [b"", b"\x89PNG\r\n\x1a\n broken"], ids=["empty", "corrupt"])
def test_unreadable_plane_is_named_and_no_partial_file_is_left(tmp_path, capsys, content):
    write_position(tmp_path / "pos")
    # The last plane, so writing is well under way when it fails.
    bad_file = tmp_path / "pos" / plane_file(2, "mCherry", 1)
    bad_file.write_bytes(content)

    error = convert_expecting_error(tmp_path / "pos", tmp_path / "out", capsys)

    assert f"error: {bad_file}: unreadable image" in error


def test_truncated_plane_is_named(tmp_path, capsys):
    write_position(tmp_path / "pos")
    bad_file = tmp_path / "pos" / plane_file(1, "DAPI", 0)
    bad_file.write_bytes(bad_file.read_bytes()[:200])

    error = convert_expecting_error(tmp_path / "pos", tmp_path / "out", capsys)

    assert f"error: {bad_file}: unreadable image" in error


def test_pattern_that_matches_nothing_names_the_input(tmp_path, capsys):
    write_position(tmp_path / "pos")

    error = convert_expecting_error(tmp_path / "pos", tmp_path / "out", capsys, "--pattern", r"(?P<t>\d+)\.tif")

    assert f"error: {tmp_path / 'pos'}: no file name in the tree matches the pattern" in error


def test_invalid_pattern_is_reported(tmp_path, capsys):
    write_position(tmp_path / "pos")

    error = convert_expecting_error(tmp_path / "pos", tmp_path / "out", capsys, "--pattern", "img_(?P<t>")

    assert "error: --pattern: not a valid regular expression" in error


def test_two_files_for_one_plane_are_named(tmp_path, capsys):
    write_position(tmp_path / "pos", size_t=2)
    (tmp_path / "pos" / "img_1_DAPI_000.png").write_bytes((tmp_path / "pos" / plane_file(1, "DAPI", 0)).read_bytes())

    error = convert_expecting_error(tmp_path / "pos", tmp_path / "out", capsys)

    assert (
        f"error: {tmp_path / 'pos' / 'img_1_DAPI_000.png'}: same plane (c=DAPI, t=1, z=0) as {plane_file(1, 'DAPI', 0)}"
        in error
    )


def test_channel_names_must_match_the_channel_count(tmp_path, capsys):
    write_position(tmp_path / "pos")

    error = convert_expecting_error(tmp_path / "pos", tmp_path / "out", capsys, "--channel-names", "a,b")

    assert "--channel-names gives 2 names for 3 channels (DAPI, GFP, mCherry)" in error


def test_existing_output_is_kept_unless_overwrite(tmp_path, capsys):
    planes = write_position(tmp_path / "pos")
    output = tmp_path / "pos.ome.tif"
    output.write_bytes(b"keep me")

    assert png2tiff.main([str(tmp_path / "pos"), str(output)]) == 2
    assert f"error: {output}: already exists" in capsys.readouterr().err
    assert output.read_bytes() == b"keep me"

    assert png2tiff.main([str(tmp_path / "pos"), str(output), "--overwrite"]) == 0
    assert_same_planes(read_back(output)[0], xyzct(planes))


def test_bad_position_in_a_tree_fails_alone(lab_tree, tmp_path, capsys):
    root, planes = lab_tree
    bad_file = root / POSITIONS[1] / plane_file(0, "GFP", 0)
    bad_file.write_bytes(b"not a png")

    code = png2tiff.main([str(root), str(tmp_path / "out")])

    assert code == 2
    assert f"error: {bad_file}: unreadable image" in capsys.readouterr().err
    assert leftovers(tmp_path / "out") == ["pos01.ome.tif", "pos07.ome.tif"]
    for position in (POSITIONS[0], POSITIONS[2]):
        assert_same_planes(read_back(tmp_path / "out" / f"{position}.ome.tif")[0], xyzct(planes[position]))


def test_scan_reports_a_non_numeric_t(tmp_path):
    write_position(tmp_path / "pos", size_t=1, size_z=1)
    pattern = r"img_(?P<t>\w+)_(?P<c>.+)_(?P<z>\d+)\.png"
    [position] = positions.find_positions(tmp_path / "pos", pattern)
    (tmp_path / "pos" / "img_first_DAPI_000.png").touch()

    with pytest.raises(MoveInError, match="t='first' from the file name is not a number"):
        positions.scan_position(position)


def test_command_line_exit_code_and_message(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "omero_movein.png2tiff", str(tmp_path / "nowhere"), str(tmp_path / "out")],
        capture_output=True,
        text=True,
        check=False,
        cwd=Path(png2tiff.__file__).parents[1],  # where `-m omero_movein` is found, installed or not
    )
    assert result.returncode == 2
    assert result.stderr == f"error: {tmp_path / 'nowhere'}: not a folder\n"

"""Check that the geometry tests catch wrong geometry: apply each mutation, run them, restore.

    .venv/bin/python tests/tools/mutations.py

Each mutation is one edit of the code that a real bug could make; every one must
make at least one test fail. The file is restored after each run, even on Ctrl-C.
Exits 1 if a mutation survives. The upload's checks need omero-py (test_upload skips without it).
"""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TESTS = ["tests/tools/test_geometry.py", "tests/tools/test_upload.py", "tests/tools/test_masks2rois.py"]
# (what, file, code, mutated code)
MUTATIONS = [
    (
        "x/y swapped in the polygons written (both paths)",
        "omero_movein/rois.py",
        "tuple(outline.ravel().tolist())",
        "tuple(outline[:, ::-1].ravel().tolist())",
    ),
    (
        "x/y swapped by the outline tracer",
        "omero_movein/outline.py",
        "np.stack((column - 1, row - 1), axis=1)",
        "np.stack((row - 1, column - 1), axis=1)",
    ),
    (
        "bounding-box offset dropped from the OME-XML Masks",
        "omero_movein/omexml.py",
        'X="{cell.x}" Y="{cell.y}"',
        'X="0" Y="0"',
    ),
    (
        "bounding-box offset dropped from the uploaded Masks",
        "omero_movein/upload.py",
        "mask.setX(rdouble(cell.x))\n            mask.setY(rdouble(cell.y))",
        "mask.setX(rdouble(0))\n            mask.setY(rdouble(0))",
    ),
    (
        "bounding-box offset dropped from the ROI model's cells",
        "omero_movein/rois.py",
        "yield label, left, top, labels",
        "yield label, 0, 0, labels",
    ),
    (
        "polygons relative to the bounding box",
        "omero_movein/rois.py",
        "CellShape(track, t, z, the_c, x, y, mask, traced.get(track))",
        "CellShape(track, t, z, the_c, x, y, mask, traced[track] - (x, y) if track in traced else None)",
    ),
    (
        "half-pixel shift: polygon corners written at pixel centres",
        "omero_movein/rois.py",
        '("%d,%d " * len(outline) % tuple(outline.ravel().tolist()))',
        '("%s,%s " * len(outline) % tuple((outline + 0.5).ravel().tolist()))',
    ),
    (
        "half-pixel shift in the outline tracer",
        "omero_movein/outline.py",
        "axis=1) + _START[side[chosen]]",
        "axis=1) + _START[side[chosen]] + 0.5",
    ),
    (
        "one colour for every track",
        "omero_movein/rois.py",
        "return red, green, blue, 128",
        "return 255, 0, 0, 128",
    ),
]


def main():
    survivors = 0
    for what, path, code, mutated in MUTATIONS:
        source = ROOT / path
        original = source.read_text()
        if original.count(code) != 1:
            sys.exit(f"{path}: the code to mutate for '{what}' is not there once; update this list")
        source.write_text(original.replace(code, mutated))
        try:
            run = subprocess.run(
                [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *TESTS],
                cwd=ROOT,
                capture_output=True,
                text=True,
                check=False,
            )
        finally:
            source.write_text(original)
        failed = [line.split()[1] for line in run.stdout.splitlines() if line.startswith("FAILED")]
        failing = sorted({test.split("::")[-1] for test in failed})
        survivors += not failing
        print(f"{what}: {'caught by ' + ', '.join(failing) if failing else 'SURVIVED'}")
    sys.exit(1 if survivors else 0)


if __name__ == "__main__":
    main()

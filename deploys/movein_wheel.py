"""This repository's data tools (``omero_movein``) as a wheel, built on the machine running
pyinfra while the deploy is planned, for the analysis environment's kernels.

The wheel is made from the files alone, byte for byte the same for the same sources (fixed
timestamps, sorted entries), so the host's copy changes exactly when the tools do. Its
dependencies are installed beside it by name (``REQUIREMENTS``, pyproject.toml's), so it
declares none and is installed with ``--no-deps``.
"""

import base64
import hashlib
import io
import zipfile
from pathlib import Path

PACKAGE = "omero_movein"
NAME, VERSION = "omero-movein", "0.1.0"
FILENAME = f"omero_movein-{VERSION}-py3-none-any.whl"
SOURCE = Path(__file__).resolve().parent.parent / PACKAGE
# What the data tools import (pyproject.toml's dependencies, extras as packages of their
# own: pip.packages compares bare names with the installed ones) and its [project.scripts];
# a unit test checks they agree with pyproject.toml.
REQUIREMENTS = ("numpy", "tifffile", "ome-types", "lxml", "imageio", "tqdm")
SCRIPTS = {"omero-png2tiff": "omero_movein.png2tiff:main", "omero-masks2rois": "omero_movein.masks2rois:main"}

_DIST_INFO = f"omero_movein-{VERSION}.dist-info"
_EPOCH = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip entry can carry


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def build() -> bytes:
    """The wheel's bytes."""
    entries = [(f"{PACKAGE}/{path.name}", path.read_bytes()) for path in sorted(SOURCE.glob("*.py"))]
    entries += [
        (f"{_DIST_INFO}/METADATA",
         f"Metadata-Version: 2.1\nName: {NAME}\nVersion: {VERSION}\n"
         "Summary: omero-pyinfra's data tools: PNG folders to OME-TIFF, masks to ROIs\n".encode()),
        (f"{_DIST_INFO}/WHEEL",
         b"Wheel-Version: 1.0\nGenerator: omero-pyinfra\nRoot-Is-Purelib: true\nTag: py3-none-any\n"),
        (f"{_DIST_INFO}/entry_points.txt",
         ("[console_scripts]\n" + "".join(f"{name} = {target}\n" for name, target in SCRIPTS.items())).encode()),
    ]
    record = "".join(f"{name},{_record_hash(data)},{len(data)}\n" for name, data in entries)
    entries.append((f"{_DIST_INFO}/RECORD", f"{record}{_DIST_INFO}/RECORD,,\n".encode()))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as wheel:
        for name, data in entries:
            info = zipfile.ZipInfo(name, _EPOCH)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            wheel.writestr(info, data)
    return buffer.getvalue()

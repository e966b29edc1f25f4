"""omero-masks2rois: cell-tracking label masks -> one ROI per tracked cell.

Each mask image is one frame: 0 is background and N is the cell with track id
N. A cell's ROI holds one Mask shape (optionally also a Polygon outline) for
every frame it appears in. The ROIs go into an OME-TIFF's OME-XML, to an image
on an OMERO server, or both.
"""

import argparse
import getpass
import os
import sys
from pathlib import Path

from .errors import MoveInError, report
from .omexml import read_ome, write_rois
from .rois import check_fits, segment


def add_rois_to_tiff(path, segmentation, replace=False):
    """Write the ROIs into an OME-TIFF's OME-XML, referenced from its image."""
    ome, roi_count = read_ome(path)
    pixels = ome.images[0].pixels
    check_fits(segmentation, pixels.size_x, pixels.size_y, pixels.size_z, pixels.size_c, pixels.size_t, path)
    if roi_count and not replace:
        raise MoveInError(path, f"already holds {roi_count} ROIs (use --replace-rois to replace them)")
    write_rois(path, ome, segmentation)


def _password(user, host):
    """From OMERO_PASSWORD, else a prompt: never from the command line, never echoed."""
    password = os.environ.get("OMERO_PASSWORD")
    if password:
        return password
    if not sys.stdin.isatty():
        raise MoveInError("OMERO_PASSWORD", "not set, and there is no terminal to prompt for the password on")
    return getpass.getpass(f"OMERO password for {user}@{host}: ")


def _parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="omero-masks2rois",
        description=(
            "Turn label masks (one image per frame; 0 = background, N = the cell with track id N) "
            "into one ROI per tracked cell, holding its Mask on every frame it appears in. "
            "Write them into an OME-TIFF (--tiff), upload them to an image on an OMERO server (--host), or both."
        ),
        epilog=(
            "The OMERO password is read from the OMERO_PASSWORD environment variable, or prompted for. "
            "Example: omero-masks2rois masks/pos01 --tiff pos01.ome.tif --polygons"
        ),
    )
    parser.add_argument("masks", type=Path, help="folder of label mask images (PNG or TIFF), one per frame")
    parser.add_argument(
        "--pattern",
        help="regular expression a mask file's whole name must match, with a named group t (frame) and "
        "optionally z (default: Micro-Manager 2.0's or 1.4's names, as for omero-png2tiff, else the number "
        "just before the extension: mask_0007.png, t12.tif)",
    )
    parser.add_argument("--channel", type=int, help="channel index (TheC) of the shapes (default: all channels)")
    parser.add_argument(
        "--z", type=int, help="z-plane index (TheZ) of the shapes whose file name gives none (default: all planes)"
    )
    parser.add_argument(
        "--polygons", action="store_true", help="also add each cell's outline as a Polygon on every frame"
    )
    local = parser.add_argument_group("into an OME-TIFF")
    local.add_argument("--tiff", type=Path, help="OME-TIFF whose OME-XML gets the ROIs (rewritten in place)")
    local.add_argument("--replace-rois", action="store_true", help="replace ROIs the OME-TIFF already holds")
    server = parser.add_argument_group("onto an OMERO server")
    server.add_argument("--host", help="OMERO server to upload to")
    server.add_argument("--port", type=int, default=4064, help="OMERO server port (default: %(default)s)")
    server.add_argument("--user", help="OMERO user name")
    server.add_argument("--image-id", type=int, help="id of the image on the server to attach the ROIs to")
    args = parser.parse_args(argv)
    if args.tiff is None and args.host is None:
        parser.error("give --tiff, --host, or both")
    if args.host is not None and (args.user is None or args.image_id is None):
        parser.error("--host needs --user and --image-id")
    return args


def main(argv=None):
    args = _parse_args(argv)
    try:
        segmentation = segment(args.masks, args.pattern, args.channel, args.z, outlines=args.polygons)
        summary = f"{len(segmentation.tracks)} tracks, {len(segmentation.shapes)} cell shapes"
        if args.tiff is not None:
            add_rois_to_tiff(args.tiff, segmentation, args.replace_rois)
            print(f"{args.tiff}: wrote {summary}")
        if args.host is not None:
            from .upload import upload  # omero-py is needed only from here on

            password = _password(args.user, args.host)
            roi_ids = upload(args.host, args.port, args.user, password, args.image_id, segmentation)
            print(f"{args.host}: Image:{args.image_id} got {summary} as {len(roi_ids)} ROIs")
    except MoveInError as err:
        return report(err)
    return 0


if __name__ == "__main__":
    sys.exit(main())

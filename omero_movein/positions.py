"""omero-png2tiff's input: the position folders of a tree, what each holds (channels,
timepoints, z-planes, as its naming reads the file names), and where each one's OME-TIFF goes."""

import os
from dataclasses import dataclass
from pathlib import Path

from .errors import MoveInError
from .filenames import (
    METADATA_FILE,
    Naming,
    compile_pattern,
    detect_naming,
    metadata_channel_names,
    micro_manager_namings,
    plane_key,
)

NAMINGS = micro_manager_namings(r"\.png")
OME_TIFF_SUFFIXES = (".ome.tif", ".ome.tiff")


@dataclass(frozen=True)
class Position:
    """Where one position's planes are: a folder, and the position number when the folder holds several."""

    folder: Path
    naming: Naming
    index: int | None
    planes: int  # files of this position, for the progress bar

    def name(self, root):
        """The image's name: its folder's path under root (or root's name), plus PosN for one of several."""
        name = self.folder.relative_to(root).as_posix() if self.folder != root else root.resolve().name
        return name if self.index is None else f"{name}/Pos{self.index}"


@dataclass(frozen=True)
class Layout:
    """What a position holds, as its naming reads the file names."""

    position: Position
    channels: list  # the c values, in plane order
    channel_names: list  # what the OME-XML calls them
    names_from: str  # where the channel names came from
    t_values: list
    z_values: list
    files: dict  # (c value, t value, z value) -> Path
    ignored: int  # files the naming did not match

    @property
    def size_c(self):
        return len(self.channels)

    @property
    def size_t(self):
        return len(self.t_values)

    @property
    def size_z(self):
        return len(self.z_values)

    def paths_in_plane_order(self):
        """Files in XYZCT order: z fastest, then channel, then time."""
        return [self.files[c, t, z] for t in self.t_values for c in self.channels for z in self.z_values]


def _consecutive(folder, group, values):
    """The sorted values of t or z, which must run without a gap from the first."""
    values = sorted(values)
    expected = list(range(values[0], values[0] + len(values)))
    if values != expected:
        gap = min(set(expected) - set(values))
        raise MoveInError(folder, f"missing plane: no file for {group}={gap} (found {group}={values[0]}..{values[-1]})")
    return values


def _channels(position, found, options, metadata_names):
    """(c values in plane order, names to store, where the names came from)."""
    numbered = all(c.isdigit() for c in found)
    if options.channel_order:
        unknown = sorted(found - set(options.channel_order))
        if unknown:
            raise MoveInError(position.folder, f"channel {unknown[0]!r} is not in --channels")
        channels = list(options.channel_order)
    elif numbered:
        channels = sorted(found, key=int)
    elif metadata_names and found <= set(metadata_names):
        # Micro-Manager 1.4 names channels in the file names; the metadata gives the acquisition's order.
        channels = [name for name in metadata_names if name in found]
    else:
        channels = sorted(found)

    if options.channel_names:
        if len(options.channel_names) != len(channels):
            raise MoveInError(
                position.folder,
                f"--channel-names gives {len(options.channel_names)} names for {len(channels)} channels "
                f"({', '.join(channels)})",
            )
        return channels, list(options.channel_names), "--channel-names"
    if numbered and metadata_names and all(int(c) < len(metadata_names) for c in channels):
        # Micro-Manager 2.0 numbers channels in the file names; the metadata names them.
        return channels, [metadata_names[int(c)] for c in channels], METADATA_FILE
    if numbered:  # Micro-Manager 2.0's channel000 is channel 0
        return channels, [str(int(c)) for c in channels], "file names"
    return channels, channels, "file names"


def scan_position(position, options=None):
    """Read a position's layout from its file names, checking every plane is there."""
    options = options or Options()
    folder = position.folder
    files = {}
    ignored = 0
    for path in sorted(p for p in folder.iterdir() if p.is_file()):
        key = plane_key(position.naming, path)
        if key is None:
            ignored += 1
            continue
        if position.index is not None and key.p != position.index:
            continue  # another position's plane
        plane = (key.c or "0", key.t or 0, key.z or 0)
        if plane in files:
            raise MoveInError(path, f"same plane (c={plane[0]}, t={plane[1]}, z={plane[2]}) as {files[plane].name}")
        files[plane] = path
    if not files:
        raise MoveInError(folder, f"no file name matches {position.naming.name}")

    channels, names, names_from = _channels(position, {c for c, _, _ in files}, options, metadata_channel_names(folder))
    t_values = _consecutive(folder, "t", {t for _, t, _ in files})
    z_values = _consecutive(folder, "z", {z for _, _, z in files})
    for t in t_values:
        for c in channels:
            for z in z_values:
                if (c, t, z) not in files:
                    raise MoveInError(folder, f"missing plane: no file for c={c}, t={t}, z={z}")
    return Layout(position, channels, names, names_from, t_values, z_values, files, ignored)




@dataclass(frozen=True)
class Options:
    """Everything about a conversion that is the same for every position."""

    pattern: str | None = None  # None: recognise Micro-Manager's names
    channel_order: tuple = ()
    channel_names: tuple = ()
    pixel_size: float | None = None  # µm, X and Y
    z_step: float | None = None  # µm
    time_increment: float | None = None  # s
    tile: int | None = None
    compression: str | None = None  # None or "zlib"
    compression_level: int = 1
    jobs: int = os.cpu_count() or 1  # decoding threads

def find_positions(root, pattern=None):
    """The positions under root (root included): folders with files of a naming, split by position number.

    Without a pattern each folder's naming is recognised on its own, so a tree
    may mix Micro-Manager 1.4 and 2.0 acquisitions.
    """
    naming = compile_pattern(pattern) if pattern is not None else None
    positions = []
    for folder, _, names in os.walk(root):
        folder = Path(folder)
        folder_naming = naming or detect_naming(folder, names, NAMINGS)
        if folder_naming is None:
            continue
        keys = [key for name in names if (key := plane_key(folder_naming, folder / name)) is not None]
        if not keys:
            continue
        indices = sorted({key.p for key in keys if key.p is not None})
        if len(indices) > 1:
            for index in indices:
                count = sum(1 for key in keys if key.p == index)
                positions.append(Position(folder, folder_naming, index, count))
        else:
            positions.append(Position(folder, folder_naming, None, len(keys)))
    if not positions:
        wanted = naming.name if naming else "Micro-Manager's names (give --pattern)"
        raise MoveInError(root, f"no file name in the tree matches {wanted}")
    return sorted(positions, key=lambda position: (position.folder, position.index or 0))


def output_paths(root, positions, output):
    """Mirror the input tree: <output>/<position's path under root>.ome.tif.

    A folder holding several positions becomes a folder of PosN.ome.tif. A
    single position may instead be given an output path ending in .ome.tif(f).
    """
    if output.name.lower().endswith(OME_TIFF_SUFFIXES):
        if len(positions) != 1:
            raise MoveInError(output, f"is a file name, but {root} holds {len(positions)} positions; give a folder")
        return [output]
    targets = []
    for position in positions:
        relative = position.folder.relative_to(root)
        relative = Path(root.resolve().name) if relative == Path(".") else relative
        if position.index is None:
            targets.append(output / relative.parent / f"{relative.name}.ome.tif")
        else:
            targets.append(output / relative / f"Pos{position.index}.ome.tif")
    return targets

"""Which plane or frame a file holds, read from its name; shared by both commands.

A naming is a regular expression over a file's whole name with the named
groups ``c`` (channel: a name or a number), ``t``, ``z`` and ``p`` (position),
all optional. Micro-Manager's two namings are recognised without a pattern;
``--pattern`` gives any other.
"""

import json
import re
from dataclasses import dataclass
from pathlib import Path

from .errors import MoveInError

# Micro-Manager writes this beside the planes of each position: JSON whose "Summary" lists the channel names.
METADATA_FILE = "metadata.txt"


@dataclass(frozen=True)
class Naming:
    name: str  # what --dry-run says was detected
    pattern: re.Pattern


@dataclass(frozen=True)
class PlaneKey:
    """What a file name says; None for a group the naming does not have."""

    c: str | None
    t: int | None
    z: int | None
    p: int | None


def micro_manager_namings(extension):
    """Micro-Manager 2.0 and 1.4 file names, for files ending in `extension` (a regular expression)."""
    return (
        Naming(
            "Micro-Manager 2.0",
            re.compile(rf"img_channel(?P<c>\d+)_position(?P<p>\d+)_time(?P<t>\d+)_z(?P<z>\d+){extension}"),
        ),
        # A digit right after img_ keeps 2.0's names (img_channel...) out of 1.4's.
        Naming("Micro-Manager 1.4", re.compile(rf"img_(?P<t>\d+)_(?P<c>.+)_(?P<z>\d+){extension}")),
    )


def compile_pattern(text):
    try:
        pattern = re.compile(text)
    except re.error as err:
        raise MoveInError("--pattern", f"not a valid regular expression: {err}") from err
    return Naming(f"the pattern {text!r}", pattern)


def detect_naming(folder, names, namings):
    """The one naming that some of `names` match, or None when none does."""
    matching = [naming for naming in namings if any(naming.pattern.fullmatch(name) for name in names)]
    if len(matching) > 1:
        raise MoveInError(
            folder, f"file names of both {' and '.join(n.name for n in matching)}; give --pattern to choose"
        )
    return matching[0] if matching else None


def plane_key(naming, path):
    """The PlaneKey of a file, or None if its name does not match the naming."""
    match = naming.pattern.fullmatch(path.name)
    if match is None:
        return None
    groups = match.groupdict()

    def number(group):
        text = groups.get(group)
        if text is None:
            return None
        if not text.isdigit():
            raise MoveInError(path, f"{group}={text!r} from the file name is not a number")
        return int(text)

    return PlaneKey(groups.get("c"), number("t"), number("z"), number("p"))


def metadata_channel_names(folder):
    """The channel names in a Micro-Manager metadata file in the folder, in channel order; None without one.

    A file that is missing, not JSON (an acquisition that crashed while writing it)
    or without the names is no error: the names then come from the file names.
    """
    try:
        summary = json.loads((Path(folder) / METADATA_FILE).read_text(encoding="utf-8")).get("Summary", {})
    except (OSError, ValueError, AttributeError):
        return None
    names = summary.get("ChNames") if isinstance(summary, dict) else None
    if not isinstance(names, list) or not names or not all(isinstance(name, str) for name in names):
        return None
    return names

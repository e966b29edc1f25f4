"""Facts that answer for many paths or venvs in one command: what a run that changes
nothing asks of a host, in as few round trips as possible (deploys/batched.py)."""

import shlex

from pyinfra.api import FactBase

# One line per path: type (find's %y: f, d, l, ...; - when absent), owner, group, octal mode,
# sha256 (- when not asked for, not a regular file or over 1 MiB), then the path itself. A
# large file (a wheel, a server zip) is hashed only by the operation that needs it: the
# fact is asked again after every change in a first deploy.
_STAT = ("s() { i=$(find \"$1\" -maxdepth 0 -printf '%y %u %g %m %s' 2>/dev/null); "
         "[ -n \"$i\" ] || i='- - - - -'; h=-; "
         "if [ \"$2\" = 1 ] && [ -f \"$1\" ] && [ ! -L \"$1\" ] && [ \"${i##* }\" -le 1048576 ]; then "
         "h=$(sha256sum < \"$1\" 2>/dev/null | cut -d' ' -f1); fi; "
         "printf '%s %s %s\\n' \"${i% *}\" \"${h:--}\" \"$1\"; }")
_TYPES = {"f": "file", "d": "directory", "l": "link"}


class PathStates(FactBase):
    """What is at each of ``paths``: ``{path: None}`` when nothing is, else ``{"type":
    "file" | "directory" | "link" | "other", "user", "group", "mode": int (octal digits, as
    pyinfra's File fact gives it), "sha256": str | None}``; a regular file's checksum only
    for those of ``hashed`` (a subset of ``paths``), and only up to 1 MiB. Symbolic links
    are not followed."""

    @staticmethod
    def default():
        return {}

    def command(self, paths: tuple[str, ...], hashed: tuple[str, ...] = ()) -> str:
        if not paths:
            return "true"
        wanted = set(hashed)
        calls = "; ".join(f"s {shlex.quote(path)} {int(path in wanted)}" for path in paths)
        return f"{_STAT}; {calls}"

    def process(self, output) -> dict:
        states: dict = {}
        for line in output:
            fields = line.rstrip("\n").split(" ", 5)
            if len(fields) != 6:
                continue
            kind, user, group, mode, digest, path = fields
            if kind == "-":
                states[path] = None
                continue
            states[path] = {"type": _TYPES.get(kind, "other"), "user": user, "group": group,
                            "mode": int(mode), "sha256": None if digest == "-" else digest}
        return states


class VenvDistributions(FactBase):
    """The distributions installed in each of ``venvs``, from their ``*.dist-info``
    directories (what pip itself reads, without starting a Python per venv):
    ``{venv: {normalised name: version}}``; a venv without a site-packages is empty."""

    @staticmethod
    def default():
        return {}

    def command(self, venvs: tuple[str, ...]) -> str:
        if not venvs:
            return "true"
        quoted = " ".join(shlex.quote(venv) for venv in venvs)
        return (f"for v in {quoted}; do echo \"venv $v\"; "
                "for d in \"$v\"/lib/python3*/site-packages/*.dist-info; do "
                "[ -d \"$d\" ] && echo \"dist ${d##*/}\"; done; done; true")

    def process(self, output) -> dict:
        found: dict = {}
        current = None
        for line in output:
            kind, _, rest = line.strip().partition(" ")
            if kind == "venv":
                current = found.setdefault(rest, {})
            elif kind == "dist" and current is not None and rest.endswith(".dist-info"):
                name, _, version = rest.removesuffix(".dist-info").partition("-")
                current[normalise(name)] = version
        return found


def normalise(name: str) -> str:
    """A distribution name as PEP 503 compares them (``Zeroc_Ice`` is ``zeroc-ice``)."""
    return "-".join(part for part in name.lower().replace("_", "-").replace(".", "-").split("-") if part)

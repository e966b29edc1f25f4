"""Facts that answer for many paths, venvs or other facts in one command: what a run that
changes nothing asks of a host, in as few round trips as possible (deploys/batched.py)."""

import re
import shlex

from pyinfra.api import FactBase, StringCommand

# One find for every path: a line each (find's %y: f, d, l, ...; owner, group, octal mode,
# size, the path); a path it does not list is absent. Then, after a marker, sha256sum's line
# for each regular file asked to be hashed and within the limit.
_FIND = "find {paths} -maxdepth 0 -printf '%y %u %g %m %s %p\\n' 2>/dev/null"
_HASH = "find {paths} -maxdepth 0 -type f{size} -exec sha256sum {{}} + 2>/dev/null"
_HASHES = "@@sha256"
_TYPES = {"f": "file", "d": "directory", "l": "link"}


class PathStates(FactBase):
    """What is at each of ``paths`` (absolute): ``{path: None}`` when nothing is, else
    ``{"type": "file" | "directory" | "link" | "other", "user", "group", "mode": int (octal
    digits, as pyinfra's File fact gives it), "sha256": str | None}``; a regular file's
    checksum only for those of ``hashed`` (a subset of ``paths``), and only up to ``limit``
    bytes (0: any size). A first deploy asks again after every change, so a large file (a
    wheel, a server zip) is hashed by the operation needing it. Symbolic links are not
    followed."""

    @staticmethod
    def default():
        return {}

    def command(self, paths: tuple[str, ...], hashed: tuple[str, ...] = (), limit: int = 1048576) -> str:
        self.paths = paths  # pyinfra processes the output with the instance that made the command
        relative = [path for path in paths if not path.startswith("/")]
        if relative:  # find would read them as its expression
            raise ValueError(f"not absolute paths: {relative}")
        if not paths:
            return "true"
        parts = [_FIND.format(paths=" ".join(shlex.quote(path) for path in paths))]
        if hashed:
            size = f" -size -{int(limit) + 1}c" if limit else ""
            parts += [f"echo {_HASHES}", _HASH.format(paths=" ".join(shlex.quote(path) for path in hashed), size=size)]
        return "; ".join([*parts, "true"])

    def process(self, output) -> dict:
        states: dict = dict.fromkeys(getattr(self, "paths", ()))
        lines = iter(output)
        for line in lines:
            if line == _HASHES:
                break
            fields = line.split(" ", 5)
            if len(fields) != 6 or not fields[3].isdigit():
                continue
            kind, user, group, mode, _, path = fields
            states[path] = {"type": _TYPES.get(kind, "other"), "user": user, "group": group,
                            "mode": int(mode), "sha256": None}
        for line in lines:
            digest, _, path = line.partition("  ")
            if states.get(path) and len(digest) == 64:
                states[path]["sha256"] = digest
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


# Each fact's output in Batch: a header line, then its output with its exit status glued to
# the end (``o=$(cmd; echo "@@$?")`` keeps the last line whether or not it ends in a newline).
_SECTION = "@@batch-fact "
_STATUS = re.compile(r"@@(\d+)$")
_ABSENT = "@@batch-fact-absent"


class Batch(FactBase):
    """Several facts in one command: ``specs`` is ``((fact class, kwargs items, user), ...)``
    (``user``: run as that account with runuser, None: as the connection runs facts). Answers
    ``{index: answer}`` with each fact's own ``process`` applied to its own output; a fact
    whose command failed, or whose required command is absent, has no answer: the caller asks
    it alone, as pyinfra would, with pyinfra's errors."""

    @staticmethod
    def default():
        return {}

    def command(self, specs: tuple) -> str:
        self.facts = []  # each fact's output is processed by the instance that made its command
        parts = ["true"]
        for index, (cls, arguments, user) in enumerate(specs):
            fact = cls()
            self.facts.append(fact)
            command = _text(fact.command(**dict(arguments)) if callable(fact.command) else fact.command)
            required = fact.requires_command
            required = _text(required(**dict(arguments)) if callable(required) else required)
            if user:
                command = f"runuser -u {shlex.quote(user)} -- sh -c {shlex.quote(command)}"
            if required:
                command = (f"if command -v {required} >/dev/null 2>&1; then {command}; "
                           f"else echo {_ABSENT}; fi")
            parts.append(f"echo '{_SECTION}{index}'; o=$( ( {command} ) 2>/dev/null; echo \"@@$?\"); "
                         "printf '%s\\n' \"$o\"")
        return "; ".join(parts)

    def process(self, output: list[str]) -> dict:
        sections: dict[int, list[str]] = {}
        current = None
        for line in output:
            if line.startswith(_SECTION) and line[len(_SECTION):].isdigit():
                current = sections.setdefault(int(line[len(_SECTION):]), [])
            elif current is not None:
                current.append(line)
        answers = {}
        for index, lines in sections.items():
            status = _STATUS.search(lines[-1]) if lines else None
            if status is None or status.group(1) != "0":
                continue
            lines[-1] = lines[-1][:status.start()]
            if not lines[-1]:
                lines.pop()
            if lines == [_ABSENT]:
                continue
            fact = self.facts[index]
            # As pyinfra: no output is the fact's default.
            answers[index] = fact.process(lines) if lines else fact.default()
        return answers


def _text(command) -> str | None:
    if isinstance(command, StringCommand):
        return command.get_raw_value()
    return command

"""pip packages in a venv decided from the venvs' ``*.dist-info`` directories, all of a
host's venvs in one batched fact (deploys/batched.py), instead of one ``pip freeze`` (a
Python started) per operation. Same decisions and commands as pip.packages with the
arguments this deploy gives it; the venv itself is pip.venv's, planned before."""

import re
import shlex

from pyinfra import host
from pyinfra.api import QuoteString, StringCommand, operation

from facts.paths import normalise

from .batched import path_state, venv_distributions

_SPEC = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?\s*(?:==\s*(\S+))?$")


def parse(spec: str) -> tuple[str, str | None]:
    """``name`` or ``name==version`` (what this deploy pins): the normalised name and the
    version, if pinned; anything else is refused."""
    found = _SPEC.match(spec.strip())
    if not found:
        raise ValueError(f"not a package name, nor name==version: {spec!r}")
    return normalise(found.group(1)), found.group(2)


@operation()
def packages(packages: list[str], virtualenv: str, present: bool = True,
             extra_install_args: str | None = None):
    """``packages`` (``name`` or ``name==version``) installed in the venv ``virtualenv``
    (without ``present``: none of them installed); all that must change in one pip command.
    ``extra_install_args`` is given to ``pip install`` as it is (a shell fragment the
    caller quoted)."""
    if not packages:
        return
    installed = venv_distributions(virtualenv)
    pip = f"{shlex.quote(virtualenv.rstrip('/'))}/bin/pip"
    missing, found = [], []
    for spec in packages:
        name, version = parse(spec)
        there = name in installed and (version is None or installed[name] == version)
        if present and not there:
            missing.append(spec)
        elif not present and name in installed:
            found.append(spec)
        else:
            host.noop(f"package {name} is {'installed' if present else 'not installed'}")
    quoted = " ".join(shlex.quote(spec) for spec in missing or found)
    if missing:
        yield " ".join(filter(None, (f"{pip} install", extra_install_args, quoted)))
    elif found:
        yield f"{pip} uninstall --yes {quoted}"


@operation()
def venv(path: str, python: str):
    """A venv at ``path`` made by ``python -m venv``, unless its ``bin/activate`` is there."""
    activate = path_state(f"{path}/bin/activate")
    if activate and activate["type"] == "file":
        host.noop(f"virtualenv {path} exists")
        return
    yield StringCommand(QuoteString(python), "-m", "venv", QuoteString(path))

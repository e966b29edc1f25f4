"""Facts asked once per host for the whole run instead of once per operation.

A run that changes nothing is as many round trips as facts asked. The operations that
use these facts say at planning time what they will ask (``want_path``, ``want_venv``,
``want_unit``, ``want``, or an operation decorated with ``asks``), and the first question on
a host asks everything wanted there in one command (facts.paths.Batch); paths, venvs and
systemd's units are each asked in one fact for all those wanted. An answer stays good until
an operation runs a command on that host: then the next question asks again, only what it
needs (a pyinfra callback counts, per host, the operations that ran commands). A run that
changes nothing therefore asks once. What is at a path stays known past an
operation that declares the paths it changes (``changes_only``: this deploy's file
operations), unless the path is one of those, or above or below one. Once the deploy file
has planned a host, ``prefetch`` asks its batch in the background: the host answers while
the controller plans the others.
"""

import functools
import posixpath
from collections.abc import Callable, Iterable
from weakref import WeakKeyDictionary, WeakSet

import gevent
from paramiko import SSHException
from pyinfra import host
from pyinfra.api.arguments import CONNECTOR_ARGUMENT_KEYS, pop_global_arguments
from pyinfra.api.state import BaseStateCallback
from pyinfra.context import ctx_config, ctx_host, ctx_state
from pyinfra.facts.files import Sha256File

from facts.omero import SystemdUnits
from facts.paths import Batch, PathStates, VenvDistributions

_paths: WeakKeyDictionary = WeakKeyDictionary()  # host -> {path: checksum wanted}
_venvs: WeakKeyDictionary = WeakKeyDictionary()  # host -> {venv: None}
_units: WeakKeyDictionary = WeakKeyDictionary()  # host -> {systemd unit: None}
_facts: WeakKeyDictionary = WeakKeyDictionary()  # host -> {(fact, arguments): user to ask as}
_batched: WeakKeyDictionary = WeakKeyDictionary()  # host -> stages (planning, executing) batched
_changes: WeakKeyDictionary = WeakKeyDictionary()  # host -> operations that ran commands
_scoped: WeakKeyDictionary = WeakKeyDictionary()  # host -> {operation: the only changes it makes}
_unscoped: WeakKeyDictionary = WeakKeyDictionary()  # host -> operations that ran commands, not scoped
_dirty: WeakKeyDictionary = WeakKeyDictionary()  # host -> changes of scoped operations since asked
_answers: WeakKeyDictionary = WeakKeyDictionary()  # host -> {fact: (asked, when, answer)}
_prefetched: WeakKeyDictionary = WeakKeyDictionary()  # host -> greenlet asking its batch ahead
_watched: WeakSet = WeakSet()


class _ChangeCounter(BaseStateCallback):
    """Counts, per host, the operations that ran commands. pyinfra announces each operation
    as it starts (on every host, run on those that have it); the ones started before it on
    that host are complete by then, but an operation that runs others inside itself."""

    def __init__(self):
        self.started: WeakKeyDictionary = WeakKeyDictionary()  # host -> operations not yet complete

    def operation_host_start(self, state, host, op_hash):
        started = self.started.setdefault(host, [])
        for earlier in list(started):
            try:
                meta = state.get_op_data_for_host(host, earlier).operation_meta
            except KeyError:  # not this host's
                started.remove(earlier)
                continue
            if meta.is_complete():
                started.remove(earlier)
                if meta.executed:
                    _changes[host] = _changes.get(host, 0) + 1
                    changes = _scoped.get(host, {}).pop(earlier, None)
                    if changes is None:
                        _unscoped[host] = _unscoped.get(host, 0) + 1
                    else:
                        _dirty.setdefault(host, set()).update(changes)
        started.append(op_hash)


def _key():
    """The host being planned or run (the real object: ``host`` is pyinfra's proxy)."""
    return ctx_host.get()


def _watch() -> None:
    current = ctx_state.get()
    if current is not None and current not in _watched:
        current.add_callback_handler(_ChangeCounter())
        _watched.add(current)


def changes_only(path: str, made: bool = False, removed: bool = False) -> None:
    """While the operation runs: it changes nothing on this host but what is at ``path``
    (and at the paths named in other calls); ``made``: made with any directory above it that
    is missing, ``removed``: removed with everything below it."""
    changes = _scoped.setdefault(_key(), {}).setdefault(host.current_op_hash, set())
    changes.add((posixpath.normpath(path), made, removed))


def _touches(path: str, change: tuple[str, bool, bool]) -> bool:
    """Whether ``change`` (as ``changes_only`` names it) may have changed what is at ``path``."""
    changed, made, removed = change
    path = posixpath.normpath(path)
    above = posixpath.commonpath((path, changed))
    return path == changed or (made and above == path) or (removed and above == changed)


def want_path(path: str, checksum: bool = False) -> None:
    """While planning: an operation on this host will ask what is at ``path`` (with
    ``checksum``, a regular file's sha256 too)."""
    _watch()
    wanted = _paths.setdefault(_key(), {})
    wanted[path] = wanted.get(path, False) or checksum


def want_venv(venv: str) -> None:
    """While planning: an operation on this host will ask what is installed in ``venv``."""
    _watch()
    _venvs.setdefault(_key(), {})[venv] = None


def want_unit(unit: str) -> None:
    """While planning: an operation on this host will ask what systemd knows of ``unit``."""
    _watch()
    _units.setdefault(_key(), {})[unit] = None


def want(cls, arguments: dict, as_user: str | None = None) -> None:
    """While planning: an operation on this host will ask ``fact(cls, **arguments)`` (from
    within an operation run ``as_user``, who answers it in the batch too)."""
    _watch()
    _facts.setdefault(_key(), {})[(cls, tuple(sorted(arguments.items())))] = as_user


def asks(wanted: Callable[..., Iterable[tuple]]):
    """Decorates an operation whose facts ``wanted(**its keyword arguments)`` names, as
    ``(fact class, {arguments})`` or ``(fact class, {arguments}, user)`` (a path it asks
    ``path_state`` of: ``(PathStates, {"path": path})``; a unit: ``(SystemdUnits, {"unit":
    unit})``): each is wanted when the operation is planned, so the host's first question asks
    them all at once. The decorated operation keeps ``wanted``."""

    def decorate(op):
        @functools.wraps(op)
        def planned(**kwargs):
            for cls, arguments, *user in wanted(**kwargs):
                if cls is PathStates:
                    want_path(**arguments)
                elif cls is SystemdUnits:
                    want_unit(**arguments)
                else:
                    want(cls, arguments, *user)
            return op(**kwargs)

        planned.wanted = wanted
        return planned

    return decorate


def _when(current, fact) -> tuple:
    """When an answer about ``fact`` was asked: the stage (planning, executing) and the
    operations that ran commands on the host since (for paths: those not scoped)."""
    changes = _unscoped if fact is PathStates else _changes
    return getattr(ctx_state.get(), "is_executing", False), changes.get(current, 0)


def ask(*wanted: tuple) -> list:
    """The answers to ``wanted`` (``(fact class, {arguments})`` each), asked now in one
    command (while planning: what the deploy itself branches on), and kept for ``fact``."""
    return _together(wanted, again=True)


def facts(*wanted: tuple) -> list:
    """``fact(cls, **arguments)`` of each of ``wanted`` (``(fact class, {arguments})``; for
    ``(SystemdUnits, {"unit": unit})``, what systemd knows of that unit): those not known
    since a command last ran on the host asked together, in one command."""
    current = _key()
    _batch(current, _when(current, None))
    return _together(wanted, again=False)


def _together(wanted: tuple, again: bool) -> list:
    """The answers to ``wanted``, those not known (all, ``again``) asked in one Batch."""
    current = _key()
    when = _when(current, None)
    answers = _answers.setdefault(current, {})
    units = _units.setdefault(current, {})
    keys, unknown = [], {}  # unknown: {answer's key: (fact, arguments, keys it is asked for)}
    for cls, arguments in wanted:
        if cls is SystemdUnits:
            unit = arguments["unit"]
            units.setdefault(unit, None)
            key, asked, arguments = SystemdUnits, unit, (("units", tuple(units)),)
        else:
            key, asked = (cls, tuple(sorted(arguments.items()))), None
            arguments = key[1]
        keys.append((key, asked))
        known, answered_when, _ = answers.get(key, ((), None, None))
        if again or answered_when != when or (asked is not None and asked not in known):
            unknown[key] = (cls, arguments, tuple(units) if cls is SystemdUnits else ())
    specs = tuple((cls, arguments, None) for cls, arguments, _ in unknown.values())
    found = host.get_fact(Batch, specs=specs) if unknown else {}
    for index, (key, (cls, arguments, asked)) in enumerate(unknown.items()):
        # A fact the batch could not answer is asked alone: pyinfra's own errors.
        answer = found[index] if index in found else host.get_fact(cls, **dict(arguments))
        answers[key] = (asked, when, answer)
    return [answers[key][2] if asked is None else answers[key][2].get(asked, {}) for key, asked in keys]


def _batch(current, when) -> None:
    """The first question inside an operation in a stage (planning, executing) on a host
    that nothing has changed yet: every wanted fact asked in one command (or prefetched),
    the answers kept as if each had been asked."""
    stage, changes = when
    if changes or not host.in_op or stage in _batched.setdefault(current, set()):
        return
    _batched[current].add(stage)
    prefetched = _prefetched.pop(current, None)
    keys, found = prefetched.get() if prefetched is not None else ((), {})
    if not found:  # none, or the prefetch failed: asked now, with pyinfra's errors
        keys, specs = _wanted(current)
        found = host.get_fact(Batch, specs=specs)
    answers = _answers.setdefault(current, {})
    for index, (key, asked) in enumerate(keys):
        if index in found:
            answers[key] = (asked, _when(current, key), found[index])


def _wanted(current) -> tuple[list, tuple]:
    """Every fact wanted on the host: the keys its answers are kept under, and the Batch
    that asks them."""
    paths = _paths.get(current, {})
    keys = [(PathStates, tuple(paths)), (VenvDistributions, tuple(_venvs.get(current, {})))]
    specs = [(PathStates, (("hashed", tuple(p for p, hashed in paths.items() if hashed)), ("limit", 0),
                           ("paths", tuple(paths))), None),
             (VenvDistributions, (("venvs", keys[1][1]),), None)]
    units = tuple(_units.get(current, {}))
    if units:
        keys.append((SystemdUnits, units))
        specs.append((SystemdUnits, (("units", units),), None))
    for (cls, arguments), user in _facts.get(current, {}).items():
        keys.append(((cls, arguments), ()))
        specs.append((cls, arguments, user))
    return keys, tuple(specs)


def prefetch() -> None:
    """Once the deploy file has planned this host (everything wanted is named), in a run that
    goes straight on to run what it planned (``-y``): its batch asked now, in the background,
    so that the host answers while the controller plans the others; the run's first question
    uses the answers. A run that detects changes has asked already, planning each operation
    (then, after the prompt, it asks again)."""
    current, config = _key(), ctx_config.get()
    if current.state.should_check_for_changes():
        return
    keys, specs = _wanted(current)

    def ask_ahead() -> tuple[list, dict]:
        # Asked as pyinfra asks a fact outside an operation, but a failure is not this run's
        # yet (nothing printed, the host not failed): the first question asks again, where
        # pyinfra reports errors.
        with ctx_config.use(config), ctx_host.use(current):
            batch = Batch()
            arguments, _ = pop_global_arguments(current.state, current, {})
            try:
                status, output = current.run_shell_command(
                    batch.command(specs), **{key: arguments[key] for key in CONNECTOR_ARGUMENT_KEYS})
            except (OSError, SSHException):
                return keys, {}
            return keys, batch.process(output.stdout_lines) if status else {}

    _prefetched[current] = gevent.spawn(ask_ahead)


def _ask(fact, key: str, _fact=None, **arguments):
    """The answer to ``fact`` (or ``_fact``, kept as ``fact``) asked with ``arguments``
    (everything wanted on this host), asked again only when ``key`` was not asked for, or
    a command ran on the host since."""
    current = _key()
    _batch(current, _when(current, None))
    when = _when(current, fact)
    answers = _answers.setdefault(current, {})
    asked, answered_when, answer = answers.get(fact, ((), None, None))
    dirty = _dirty.get(current, ()) if fact is PathStates else ()
    if answered_when != when or (key and key not in asked) or any(_touches(key, change) for change in dirty):
        asked = next(iter(arguments.values()), ())
        answer = host.get_fact(_fact or fact, **arguments)
        answers[fact] = (asked, when, answer)
        if fact is PathStates:
            _dirty[current] = set()
    return answer


def fact(cls, **arguments):
    """``host.get_fact(cls, **arguments)``, asked once until a command runs on the host
    (for facts several operations ask with the same arguments: the installed packages)."""
    return _ask((cls, tuple(sorted(arguments.items()))), "", _fact=cls, **arguments)


def path_state(path: str, checksum: bool = False) -> dict | None:
    """What is at ``path`` now (see facts.paths.PathStates); None when nothing is."""
    wanted = _paths.setdefault(_key(), {})
    if checksum and not wanted.get(path):
        wanted[path] = True
        _answers.get(_key(), {}).pop(PathStates, None)
    wanted.setdefault(path, checksum)
    answer = _ask(PathStates, path, paths=tuple(wanted),
                  hashed=tuple(p for p, hashed in wanted.items() if hashed))
    return answer.get(path)


def file_checksum(path: str) -> str | None:
    """The sha256 of the regular file at ``path``, None when there is none: from the batched
    fact, or asked alone for a file too large for it."""
    current = path_state(path, checksum=True)
    if not current or current["type"] != "file":
        return None
    return current["sha256"] or host.get_fact(Sha256File, path=path)


def venv_distributions(venv: str) -> dict[str, str]:
    """``{normalised name: version}`` installed in ``venv`` now (facts.paths.VenvDistributions)."""
    wanted = _venvs.setdefault(_key(), {})
    wanted.setdefault(venv, None)
    return _ask(VenvDistributions, venv, venvs=tuple(wanted)).get(venv, {})

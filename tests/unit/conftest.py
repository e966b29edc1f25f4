"""Unit tests: our operations and facts alone, without a host or a pyinfra state.

An operation is run as pyinfra runs it (its generator, through the ``_inner`` function
the ``@operation`` decorator keeps) with the ``host`` it reads replaced by a FakeHost:
facts are answered from the case's table, ``noop`` messages are recorded, and every
command yielded is returned as the host would receive it (secrets unmasked) and as
pyinfra would print it (secrets masked).
"""

import inspect
from dataclasses import dataclass, field

import pytest
from pyinfra.api import FileUploadCommand, FunctionCommand
from pyinfra.operations import server

from deploys import (
    batched,
    certificate_operations,
    database_operations,
    file_operations,
    operations,
    rolling,
    system_operations,
    venv_operations,
)
from deploys.chained import Chained
from facts.omero import SystemdUnits
from facts.paths import Batch, PathStates


def pytest_configure(config):
    config.addinivalue_line("markers", "unit: unit tests of our operations and facts (no host, seconds)")


class FakeHost:
    """Answers ``get_fact(Fact, **kwargs)`` from ``facts``: ``{fact class name: value}``, the
    value called with the keyword arguments when it is callable. A fact missing from the
    table is an error, so a case states every fact the operation reads."""

    in_op = False  # what batched reads: the facts are this table's, asked one by one
    current_op_hash = None

    def __init__(self, facts: dict, connector=None, data: dict | None = None):
        self.facts = facts
        self.connector, self.data = connector, data or {}
        self.fact_calls: list[tuple[str, dict]] = []
        self.noops: list[str] = []

    def get_fact(self, fact, **kwargs):
        if fact is Batch and "Batch" not in self.facts:  # each fact answered as if asked alone
            return {index: self.get_fact(cls, **dict(arguments))
                    for index, (cls, arguments, _) in enumerate(kwargs["specs"])}
        name = fact.__name__
        self.fact_calls.append((name, kwargs))
        if name not in self.facts:
            raise AssertionError(f"unexpected fact {name}({kwargs})")
        value = self.facts[name]
        return value(**kwargs) if callable(value) else value

    def noop(self, description: str):
        self.noops.append(description)

    def get_temp_filename(self, hash_key: str, temp_directory: str | None = None) -> str:
        return f"{temp_directory or '/tmp'}/pyinfra-temp-for-{hash_key.replace(' ', '-').replace('/', '_')}"


@dataclass
class Run:
    commands: list = field(default_factory=list)  # as the host would run them (uploads as tuples)
    printed: list = field(default_factory=list)  # as pyinfra shows them (secrets masked)
    noops: list[str] = field(default_factory=list)
    fact_calls: list[tuple[str, dict]] = field(default_factory=list)


def _texts(command) -> tuple:
    if isinstance(command, FileUploadCommand):
        # An upload: what, where to, and through which temporary file (never printed).
        upload = ("upload", command.src.getvalue(), command.dest, command.remote_temp_filename)
        return upload, upload
    if isinstance(command, FunctionCommand):
        # A callback run in the controller: which, with what.
        call = ("call", command.function.__name__, command.args)
        return call, call
    if isinstance(command, str):
        # pyinfra strips a yielded string into a StringCommand.
        return command.strip(), command.strip()
    return command.get_raw_value(), str(command)


@pytest.fixture
def run_op(monkeypatch):
    """``run_op(operation, facts, *args, connector=..., data=..., **kwargs) -> Run``: the
    host's connector and data default to none (a local root connection)."""

    def run(op, facts, *args, connector=None, data=None, **kwargs) -> Run:
        fake = FakeHost(facts, connector, data)
        # pyinfra's server operations too: ours are checked against them.
        for module in (operations, database_operations, certificate_operations, file_operations, venv_operations,
                       batched, rolling, system_operations, server):
            monkeypatch.setattr(module, "host", fake)
        monkeypatch.setattr(batched, "_key", lambda: fake)  # the batched facts' host
        result = Run(noops=fake.noops, fact_calls=fake.fact_calls)
        for sent in op._inner(*args, **kwargs):
            # Commands sent as one (deploys/chained.py) are stated one by one in the tables;
            # test_chained checks how they are joined.
            for command in sent.commands if isinstance(sent, Chained) else [sent]:
                raw, printed = _texts(command)
                result.commands.append(raw)
                result.printed.append(printed)
        if hasattr(op, "wanted"):
            _assert_asked_only_what_it_wants(op, args, kwargs, fake.fact_calls)
        return result

    return run


# Asked alone by design, never batched: a file too large to hash in the batch.
_ASKED_ALONE = {"Sha256File"}


def _assert_asked_only_what_it_wants(op, args, kwargs, fact_calls) -> None:
    """Every fact an ``@asks`` operation asked is one it named when planned (deploys/batched.py):
    one it did not would be a question of its own on every run (or, with arguments its fact
    does not take, a batch that fails)."""
    bound = inspect.signature(op._inner).bind(*args, **kwargs)
    wanted = list(op.wanted(**bound.arguments))
    for name, arguments in fact_calls:
        if name in _ASKED_ALONE:
            continue
        # A path or unit is asked in one fact with every other wanted on the host: here, the operation's.
        if name == "PathStates":
            ok = set(arguments["paths"]) <= {w[1]["path"] for w in wanted if w[0] is PathStates}
        elif name == "SystemdUnits":
            ok = set(arguments["units"]) <= {w[1]["unit"] for w in wanted if w[0] is SystemdUnits}
        else:
            ok = any(w[0].__name__ == name and w[1] == arguments for w in wanted)
        assert ok, f"{op.__name__} asked {name}({arguments}) but named {wanted} when planned"

"""Unit tests: our operations and facts alone, without a host or a pyinfra state.

An operation is run as pyinfra runs it (its generator, through the ``_inner`` function
the ``@operation`` decorator keeps) with the ``host`` it reads replaced by a FakeHost:
facts are answered from the case's table, ``noop`` messages are recorded, and every
command yielded is returned as the host would receive it (secrets unmasked) and as
pyinfra would print it (secrets masked).
"""

from dataclasses import dataclass, field

import pytest

from deploys import operations


def pytest_configure(config):
    config.addinivalue_line("markers", "unit: unit tests of our operations and facts (no host, seconds)")


class FakeHost:
    """Answers ``get_fact(Fact, **kwargs)`` from ``facts``: ``{fact class name: value}``, the
    value called with the keyword arguments when it is callable. A fact missing from the
    table is an error, so a case states every fact the operation reads."""

    def __init__(self, facts: dict):
        self.facts = facts
        self.fact_calls: list[tuple[str, dict]] = []
        self.noops: list[str] = []

    def get_fact(self, fact, **kwargs):
        name = fact.__name__
        self.fact_calls.append((name, kwargs))
        if name not in self.facts:
            raise AssertionError(f"unexpected fact {name}({kwargs})")
        value = self.facts[name]
        return value(**kwargs) if callable(value) else value

    def noop(self, description: str):
        self.noops.append(description)


@dataclass
class Run:
    commands: list[str] = field(default_factory=list)  # as the host would run them
    printed: list[str] = field(default_factory=list)  # as pyinfra shows them (secrets masked)
    noops: list[str] = field(default_factory=list)
    fact_calls: list[tuple[str, dict]] = field(default_factory=list)


def _texts(command) -> tuple[str, str]:
    if isinstance(command, str):
        # pyinfra strips a yielded string into a StringCommand.
        return command.strip(), command.strip()
    return command.get_raw_value(), str(command)


@pytest.fixture
def run_op(monkeypatch):
    """``run_op(operation, facts, *args, **kwargs) -> Run``."""

    def run(op, facts, *args, **kwargs) -> Run:
        fake = FakeHost(facts)
        monkeypatch.setattr(operations, "host", fake)
        result = Run(noops=fake.noops, fact_calls=fake.fact_calls)
        for command in op._inner(*args, **kwargs):
            raw, printed = _texts(command)
            result.commands.append(raw)
            result.printed.append(printed)
        return result

    return run

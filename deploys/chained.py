"""Shell commands an operation sends one after another, sent as one: a round trip to the
host each (SSH, sudo, a shell) is most of what a small step costs."""

import functools
from collections.abc import Callable, Iterable, Iterator

from pyinfra.api import StringCommand


class Chained(StringCommand):
    """Shell commands run in turn, each in its own subshell (as pyinfra runs each in a shell
    of its own), stopping at the first that fails (as pyinfra stops the operation)."""

    def __init__(self, commands: list[StringCommand]):
        self.commands = commands
        parts: list = []
        for command in commands:
            # The newline ends a comment a command may end with, which would swallow the ")".
            parts += [*(["&&"] if parts else []), "(", command, "\n)"]
        super().__init__(*parts)


def chained(commands: Iterable) -> Iterator:
    """``commands`` (as an operation yields them) with each run of shell commands between
    uploads and functions joined into one ``Chained``."""
    run: list[StringCommand] = []
    for command in commands:
        if isinstance(command, str):
            command = StringCommand(command.strip())
        if isinstance(command, Chained):  # another chained operation's, inside this one
            run.extend(command.commands)
            continue
        if type(command) is StringCommand:
            run.append(command)
            continue
        yield from _flush(run)
        yield command
    yield from _flush(run)


def _flush(run: list[StringCommand]) -> Iterator[StringCommand]:
    if run:
        yield run[0] if len(run) == 1 else Chained(list(run))
        run.clear()


def chaining(op: Callable[..., Iterator]) -> Callable[..., Iterator]:
    """An operation's generator with its commands ``chained`` (under pyinfra's @operation)."""

    @functools.wraps(op)
    def commands(*args, **kwargs):
        yield from chained(op(*args, **kwargs))

    return commands

"""Errors raised while the deploy is planned, before any host is changed."""

from typing import Any

from pyinfra.api.exceptions import PyinfraError


class OmeroDeployError(PyinfraError):
    """The inventory asks for something this deploy cannot do."""


class OmeroOptionError(OmeroDeployError):
    """An option has a bad value; the message names the option, what is wrong with the value
    and, when one is known, a good value to copy (written as the inventory would hold it)."""

    def __init__(self, option: str, problem: str, host: str | None = None, example: Any = None):
        where = f" (host {host})" if host else ""
        hint = f"; for example {example!r}" if example is not None else ""
        super().__init__(f"option {option}{where}: {problem}{hint}")
        self.option, self.problem, self.example = option, problem, example

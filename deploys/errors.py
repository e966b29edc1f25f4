"""Errors raised while the deploy is planned, before any host is changed."""

from pyinfra.api.exceptions import PyinfraError


class OmeroDeployError(PyinfraError):
    """The inventory asks for something this deploy cannot do."""


class OmeroOptionError(OmeroDeployError):
    """An option has a bad value; the message names the option and what is wrong."""

    def __init__(self, option: str, problem: str, host: str | None = None):
        where = f" (host {host})" if host else ""
        super().__init__(f"option {option}{where}: {problem}")
        self.option = option

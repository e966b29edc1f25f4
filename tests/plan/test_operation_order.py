"""pyinfra orders each operation by the call stack it is called from, and inspect looks up
the module of every frame by its file. The deploy file, which pyinfra runs without
importing it, is registered as a module: otherwise each operation costs a scan of every
loaded module (about half of planning a host)."""

import inspect

import pytest

from .harness import DEPLOY

pytestmark = pytest.mark.plan


def test_the_deploy_file_is_known_as_a_module(deploy):
    deploy({"web": (("omero_web",), {})}, os_name="debian12", execute=False)
    # What inspect finds for a frame of the deploy file (a code object compiled from it).
    assert inspect.getmodule(compile("", DEPLOY, "exec")) is not None

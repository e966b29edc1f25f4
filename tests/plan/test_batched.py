"""The file operations that decide from one batched fact (deploys/file_operations.py)
plan what pyinfra's files.* plan: under --diff the deploy uses pyinfra's own (they show
the diffs), so the two plans of the same host must not differ but in the facts asked."""

import re

import pytest

from .conftest import ALL_ROLES

pytestmark = pytest.mark.plan

# What files.directory, files.file and files.put send besides their facts.
# (Ours removes its upload's temporary file itself; pyinfra's connector does, unseen here.)
FILE_COMMAND = re.compile(r"^(mkdir -p|chmod|chown|chgrp|touch|rm -rf|rm -f(?! /tmp/pyinfra-)) ")


@pytest.mark.parametrize("os_name", ["debian12", "rocky9"])
def test_batched_plan_is_pyinfras(deploy, os_name):
    ours = deploy({"aio": (ALL_ROLES, {})}, os_name=os_name)["aio"]
    pyinfras = deploy({"aio": (ALL_ROLES, {})}, os_name=os_name, diff=True)["aio"]
    assert ours.ops == pyinfras.ops
    assert sorted(ours.uploads) == sorted(pyinfras.uploads)
    assert ([c for c in ours.commands if FILE_COMMAND.match(c)]
            == [c for c in pyinfras.commands if FILE_COMMAND.match(c)])
    # pyinfra asks a File or Directory fact per path (a stat); ours one PathStates for all.
    stats = [sum(c.startswith("! (test -e ") for c in run.commands) for run in (ours, pyinfras)]
    assert stats[0] < stats[1] / 5, stats

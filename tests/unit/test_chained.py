"""Commands sent as one (deploys/chained.py): joined in order, each in its own subshell,
stopping at the first that fails; uploads and controller functions stay apart."""

import subprocess
from io import StringIO

import pytest
from pyinfra.api import FileUploadCommand, FunctionCommand, MaskString, StringCommand

from deploys.chained import Chained, chained

pytestmark = pytest.mark.unit


def _texts(commands):
    return [command.get_raw_value() if isinstance(command, StringCommand) else type(command).__name__
            for command in commands]


def test_runs_between_uploads_and_functions_are_joined():
    upload = FileUploadCommand(StringIO("x"), "/etc/x")
    call = FunctionCommand(print, (), {})
    sent = list(chained(["mkdir -p /a ", StringCommand("chmod", "700", "/a"), upload, "chown a /etc/x",
                         "chmod 600 /etc/x", call, "touch /done"]))
    assert _texts(sent) == ["( mkdir -p /a \n) && ( chmod 700 /a \n)", "FileUploadCommand",
                            "( chown a /etc/x \n) && ( chmod 600 /etc/x \n)", "FunctionCommand", "touch /done"]
    assert isinstance(sent[0], Chained) and not isinstance(sent[-1], Chained)


def test_an_operation_chained_inside_another_is_one_run():
    """An operation made of chained ones (file_operations.directories) sends one command."""
    inner = list(chained(["mkdir -p /a", "chmod 700 /a"]))
    sent = list(chained([*inner, "mkdir -p /b", *chained(["chmod 700 /b", "chown b /b"])]))
    assert _texts(sent) == ["( mkdir -p /a \n) && ( chmod 700 /a \n) && ( mkdir -p /b \n) && ( chmod 700 /b \n)"
                            " && ( chown b /b \n)"]


def test_nothing_to_send():
    assert list(chained([])) == []


def _run(*commands: str) -> subprocess.CompletedProcess:
    [joined] = chained(commands)
    return subprocess.run(["sh", "-c", joined.get_raw_value()], capture_output=True, text=True)


def test_stops_at_the_first_failure_as_pyinfra_does():
    result = _run("echo one", "false", "echo never")
    assert result.returncode != 0 and result.stdout == "one\n"


def test_each_command_in_its_own_shell():
    # An exit, a cd or a variable of one command does not reach the next (pyinfra runs each in a
    # shell of its own); commands of several statements keep their meaning.
    result = _run("cd /tmp; X=1; exit 0  # a comment", "pwd; echo \"x=${X:-unset}\"",
                  "for i in 1 2; do echo $i; done")
    assert result.returncode == 0
    assert result.stdout.split("\n")[:2] != ["/tmp", "x=1"]
    assert result.stdout.endswith("x=unset\n1\n2\n")


def test_secrets_stay_masked():
    [joined] = chained([StringCommand("echo", MaskString("s3cret")), "true"])
    assert "s3cret" in joined.get_raw_value() and "s3cret" not in joined.get_masked_value()

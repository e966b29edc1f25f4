"""Plan deploy.py against pyinfra's @fake hosts and record what it would do.

The hosts answer the facts the deploy reads (OS release, PID 1, CPUs, OMERO's own) from
canned responses; every other command "succeeds" with no output, which reads as a
fresh machine. deploy.py is loaded the way the pyinfra CLI loads a deploy file, then
(unless only planning) the operations are run against the fake connector, which records
every command; uploads are captured here, as the fake connector drops them.
"""

import os
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

import pyinfra
from pyinfra.api import Config, Inventory, State
from pyinfra.api.connect import connect_all
from pyinfra.api.operations import run_ops
from pyinfra.api.state import StateStage
from pyinfra.connectors.util import CommandOutput, OutputLine
from pyinfra.context import ctx_inventory, ctx_state
from pyinfra_cli.exceptions import UnexpectedExternalError
from pyinfra_cli.util import load_deploy_file

from deploys.chained import Chained

DEPLOY = str(Path(__file__).resolve().parents[2] / "deploy.py")

_OS_RELEASES = {
    "ubuntu22.04": """NAME="Ubuntu"
VERSION_ID="22.04"
VERSION="22.04.4 LTS (Jammy Jellyfish)"
VERSION_CODENAME=jammy
ID=ubuntu
ID_LIKE=debian""",
    "ubuntu24.04": """NAME="Ubuntu"
VERSION_ID="24.04"
VERSION="24.04.1 LTS (Noble Numbat)"
VERSION_CODENAME=noble
ID=ubuntu
ID_LIKE=debian""",
    "debian12": """PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
VERSION="12 (bookworm)"
VERSION_CODENAME=bookworm
ID=debian""",
    "debian13": """PRETTY_NAME="Debian GNU/Linux 13 (trixie)"
NAME="Debian GNU/Linux"
VERSION_ID="13"
VERSION="13 (trixie)"
VERSION_CODENAME=trixie
ID=debian""",
    "rocky9": """NAME="Rocky Linux"
VERSION="9.4 (Blue Onyx)"
ID="rocky"
ID_LIKE="rhel centos fedora"
VERSION_ID="9.4"
PLATFORM_ID="platform:el9\"""",
    "centos7": """NAME="CentOS Linux"
VERSION="7 (Core)"
ID="centos"
ID_LIKE="rhel fedora"
VERSION_ID="7"
PRETTY_NAME="CentOS Linux 7 (Core)\"""",
    "alpine3.20": """NAME="Alpine Linux"
ID=alpine
VERSION_ID=3.20.3
PRETTY_NAME="Alpine Linux v3.20\"""",
}
SUPPORTED_OSES = ("ubuntu22.04", "ubuntu24.04", "debian12", "debian13", "rocky9")


@dataclass
class HostRun:
    ops: list[str] = field(default_factory=list)  # planned operation names, in order
    commands: list[str] = field(default_factory=list)  # every command sent, secrets masked
    raw_commands: list[str] = field(default_factory=list)  # the same, as the host would run them
    uploads: dict[str, str] = field(default_factory=dict)  # remote path -> uploaded text


def fake_responses(os_name: str, pid1: str, cpus: int = 2) -> dict:
    release = ["/etc/os-release", *_OS_RELEASES[os_name].splitlines(), "---"]
    return {
        "ls -pdL *-release": release,
        "cat /proc/1/comm": [pid1],
        "uname -s": ["Linux"],
        # The Which fact: every tool an operation looks for (useradd, ...) is installed.
        re.compile(r"^command -v \S+ \|\| true$"): ["/usr/bin/found"],
        "NPROCESSORS_ONLN": [str(cpus)],
        # A fresh database: the schema query fails the way psql reports it.
        "FROM dbpatch": ['ERROR:  relation "dbpatch" does not exist'],
        # supervisord not running yet (the fact's own marker).
        re.compile(r"echo __DOWN__; fi"): ["__DOWN__"],
        # The default site Debian's nginx package enables: our batched path fact's answer,
        # and the stat of pyinfra's Link fact (under --diff).
        re.compile(r"^find .* /etc/nginx/sites-enabled/default .*-maxdepth 0 -printf"): [
            "l root root 777 34 /etc/nginx/sites-enabled/default"],
        re.compile(r"stat -c .* /etc/nginx/sites-enabled/default"): [
            "user=root group=root mode=lrwxrwxrwx atime=0 mtime=0 ctime=0 size=34 "
            "'/etc/nginx/sites-enabled/default' -> '/etc/nginx/sites-available/default'"],
    }


# The venvs' installed distributions (facts.paths.VenvDistributions), answered by venv_listing.
VENV_LISTING = re.compile(r"/site-packages/\*\.dist-info; do")


def venv_listing(venv: str, specs: list[str]) -> list[str]:
    """What the venv listing answers for ``venv`` holding ``specs`` (``name==version``)."""
    return [f"venv {venv}", *(f"dist {name.replace('-', '_')}-{version}.dist-info"
                              for name, version in (spec.split("==") for spec in specs))]


def run_deploy(hosts: dict[str, tuple[tuple[str, ...], dict]], **kwargs) -> dict[str, HostRun]:
    """_plan, recorded (tests/plan/record.py) when ``$OMERO_PLAN_RECORD`` names a directory."""
    directory = os.environ.get("OMERO_PLAN_RECORD")
    if not directory:
        return _plan(hosts, **kwargs)
    from . import record

    try:
        runs = _plan(hosts, **kwargs)
    except Exception as error:
        record.save(directory, record.current_test(), hosts, getattr(error, "runs", None), error, kwargs)
        raise
    record.save(directory, record.current_test(), hosts, runs, None, kwargs)
    return runs


def _plan(hosts: dict[str, tuple[tuple[str, ...], dict]], *, os_name: str = "ubuntu24.04",
          pid1: str = "systemd", execute: bool = True,
          responses: dict | None = None, diff: bool = False) -> dict[str, HostRun]:
    """Plan (and unless ``execute`` is false, run) deploy.py for ``{name: (groups, data)}``.

    ``responses`` answer commands before the defaults do (the host as it is found);
    ``diff`` is pyinfra's --diff (file changes shown).

    Returns each host's HostRun, keyed by the names given. An error raised while
    planning propagates with the HostRuns so far attached as ``error.runs``.
    """
    names = {name: f"@fake/{name}" for name in hosts}
    all_hosts = []
    groups: dict[str, list[str]] = {}
    for name, (host_groups, data) in hosts.items():
        all_hosts.append((names[name], {
            "fake_delay": 0, "fake_delay_jitter": 0,
            "fake_responses": {**(responses or {}), **fake_responses(os_name, pid1)},
            **data,
        }))
        for group in host_groups:
            groups.setdefault(group, []).append(names[name])
    inventory = Inventory((all_hosts, {}), **{group: (members, {}) for group, members in groups.items()})
    state = State(inventory, Config(PARALLEL=len(hosts), DIFF=diff))
    runs = {name: _record(inventory.get_host(names[name])) for name in hosts}

    # As the CLI: operation order from the deploy file's call stack, not per-host counters.
    was_cli, pyinfra.is_cli = pyinfra.is_cli, True
    try:
        with ctx_state.use(state), ctx_inventory.use(inventory):
            state.set_stage(StateStage.Connect)
            connect_all(state)
            state.set_stage(StateStage.Prepare)
            try:
                load_deploy_file(state, DEPLOY)
            except Exception as error:
                if isinstance(error, UnexpectedExternalError):
                    error = error.exception  # a bug in the deploy: its own error, not the CLI's wrapper
                error.runs = runs
                raise error
            if execute:
                state.set_stage(StateStage.Execute)
                run_ops(state)
    finally:
        pyinfra.is_cli = was_cli

    for name, run in runs.items():
        host = inventory.get_host(names[name])
        run.ops = [", ".join(sorted(state.get_op_meta(op_hash).names))
                   for op_hash in host.op_hash_order if op_hash in state.ops[host]]
        if execute:
            results = state.get_results_for_host(host)
            assert results.error_ops == 0, f"{name}: {results.error_ops} operations failed"
    return runs


# One fact of facts.paths.Batch's command, and the output it reads back.
_BATCHED = re.compile(r"echo '(@@batch-fact \d+)'; o=\$\( \( (.*?) \) 2>/dev/null; "
                      r"echo \"@@\$\?\"\); printf '%s\\n' \"\$o\"")


def unbatched(commands: list[str]) -> list[str]:
    """``commands`` with each Batch of facts replaced by the facts' own commands."""
    return [fact for command in commands for fact in ([c for _, c in _BATCHED.findall(command)] or [command])]


def _batch_output(connector, raw: str):
    """The fake host's answer to a Batch of facts: each answered as if asked alone."""
    lines = []
    for header, command in _BATCHED.findall(raw):
        success, output = connector._lookup_response(command)
        lines += [OutputLine("stdout", header), *(OutputLine("stdout", line) for line in output.stdout_lines),
                  OutputLine("stdout", f"@@{0 if success else 1}")]
    return True, CommandOutput(lines)


def _record(host) -> HostRun:
    """A HostRun kept up to date with what the fake connector is sent (it drops uploads)."""
    connector = host.connector
    run = HostRun(commands=connector.executed_commands)
    fake_run, fake_put_file = connector.run_shell_command, connector.put_file

    def run_shell_command(command, *args, **kwargs):
        if isinstance(command, Chained):
            # Sent as one; recorded (and answered) as the commands it runs in turn.
            for part in command.commands:
                status, output = run_shell_command(part, *args, **kwargs)
                if not status:
                    break
            return status, output
        raw = command if isinstance(command, str) else command.get_raw_value()
        run.raw_commands.append(raw)
        if _BATCHED.search(raw):
            fake_run("true", *args, **kwargs)
            connector.executed_commands[-1] = command if isinstance(command, str) else command.get_masked_value()
            return _batch_output(connector, raw)
        # A file staged elsewhere, then renamed or copied into place: follow it.
        words = shlex.split(raw) if raw.startswith(("mv -f ", "cp ")) else []
        if words and words[-2] in run.uploads:
            run.uploads[words[-1]] = run.uploads.pop(words[-2])
        return fake_run(command, *args, **kwargs)

    def put_file(filename_or_io, remote_filename, *args, **kwargs):
        if hasattr(filename_or_io, "getvalue"):
            content = filename_or_io.getvalue()
            # Binary uploads (a wheel) kept legible enough to look for names in.
            run.uploads[remote_filename] = (content.decode(errors="replace") if isinstance(content, bytes)
                                            else content)
        else:
            run.uploads[remote_filename] = Path(filename_or_io).read_text(errors="replace")
        return fake_put_file(filename_or_io, remote_filename, *args, **kwargs)

    connector.run_shell_command = run_shell_command
    connector.put_file = put_file
    return run

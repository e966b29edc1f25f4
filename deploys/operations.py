"""Operations pyinfra lacks, each idempotent: it reads the current state (a fact, at
execution time) and yields commands only when something must change. Files, commands and
services here; the database's in database_operations, the certificate's in
certificate_operations."""

import getpass
import hashlib
import shlex
from collections.abc import Callable
from io import StringIO

from pyinfra import host
from pyinfra.api import FileUploadCommand, OperationError, QuoteString, StringCommand, operation
from pyinfra.connectors.ssh import SSHConnector
from pyinfra.facts.server import Command

from facts.omero import (
    BackupRepositoriesPresent,
    ChangedSince,
    FirstFile,
    PackageManagerActivity,
    SupervisorPrograms,
    SystemdUnits,
    UserAccount,
    package_manager_running,
)
from facts.paths import PathStates

from . import service_commands
from .batched import asks, fact, facts, file_checksum, path_state, want_path
from .chained import chaining


@asks(lambda user, **_: [(UserAccount, {"user": user})])
@operation()
def not_in_group(user: str, group: str):
    """``user`` not a secondary member of ``group`` (pyinfra's ``server.user`` only adds)."""
    account = fact(UserAccount, user=user)
    if account is None or group not in account["groups"]:
        host.noop(f"{user} is not in {group}")
        return
    yield f"gpasswd -d {shlex.quote(user)} {shlex.quote(group)}"


@operation()
def icepy_wheel(python: str, wheel_dir: str, build_script: str):
    """Build the patched IcePy 3.6.5 wheel into ``wheel_dir`` unless one is there already."""
    if host.get_fact(FirstFile, pattern=f"{wheel_dir}/zeroc_ice-3.6.5-*.whl"):
        host.noop("an IcePy 3.6.5 wheel is already in the wheel cache")
        return
    yield StringCommand("sh", QuoteString(build_script), QuoteString(python), QuoteString(wheel_dir))


def changed(*ops) -> Callable[[], bool]:
    """Whether any of ``ops`` changed this host (while planning: would change it); for
    waiting on what was just (re)started.

    Operations given ``when=changed(...)`` decide inside themselves, so a dry run of an
    unchanged host plans nothing for them (``_if`` ones would be listed as maybe-changes).
    """
    ops = [op for op in ops if op is not None]

    def check() -> bool:
        return any(op.did_change() if op.is_complete() else op.will_change for op in ops)

    return check


def as_user_command(user: str, command: str) -> StringCommand:
    """``command`` (a shell line) run as ``user`` (``omero`` refuses root), from root."""
    return StringCommand("runuser", "-u", QuoteString(user), "--", "sh", "-c", QuoteString(command))


def _touch(stamp: str) -> StringCommand:
    return StringCommand("touch", QuoteString(stamp))


def _changes_since(restart_sources=None, sources=None, stamp=None, **_):
    return [(ChangedSince, {"paths": tuple(sources or restart_sources), "reference": stamp})]


@asks(_changes_since)
@operation()
@chaining
def refreshed(commands: list[str], sources: list[str], stamp: str, touch: bool = True,
              user: str | None = None):
    """Run ``commands`` (as ``user``, else root) when any of ``sources`` (paths, globs)
    changed after ``stamp`` was touched, or it is missing; then touch it (unless ``touch``
    is false: a check that must pass until whatever owns ``stamp`` has caught up).

    Decided from the host, not from this run: a run cut short after a source changed is
    finished by the next one. The stamp is root's, so a service user cannot forge it.
    """
    if not fact(ChangedSince, paths=tuple(sources), reference=stamp):
        host.noop(f"nothing changed since {stamp}")
        return
    for command in commands:
        yield command if user is None else as_user_command(user, command)
    if touch:
        yield _touch(stamp)


@asks(lambda conf, **kwargs: [(SupervisorPrograms, {"conf": conf}), *_changes_since(**kwargs)])
@operation()
@chaining
def supervised(program: str, conf: str, restart_sources: list[str], stamp: str,
               environment: dict[str, str] | None = None):
    """``program`` known to a running supervisord and RUNNING, started after the last change
    to any of ``restart_sources`` (``stamp`` records when the deploy last started it);
    supervisord started if needed, with ``environment`` added to its own (what its programs
    read as ``%(ENV_X)s``)."""
    ctl = f"supervisorctl -c {shlex.quote(conf)}"

    def supervisorctl(action: str) -> str:
        return service_commands.shell("supervisord", action, program, conf)

    programs, changed = facts((SupervisorPrograms, {"conf": conf}),
                              *_changes_since(restart_sources=restart_sources, stamp=stamp))
    if programs is None:
        # supervisord starts every autostart program itself, in priority order.
        given = "".join(f" {shlex.quote(f'{variable}={value}')}" for variable, value in (environment or {}).items())
        yield f"{'env' + given + ' ' if given else ''}supervisord -c {shlex.quote(conf)}"
        yield (f"for i in $(seq 100); do {ctl} pid >/dev/null 2>&1 && break; sleep 0.1; done; "
               f"{ctl} pid >/dev/null")
    elif program not in programs:
        yield f"{ctl} update"
    elif changed:
        # update restarts the program if its own section changed; restart covers the rest.
        yield f"{ctl} update && {supervisorctl('restart')}"
    elif programs[program] in ("STARTING", "BACKOFF"):
        pass  # supervisord is starting it already: wait below
    elif programs[program] != "RUNNING":
        yield supervisorctl("start")
    else:
        host.noop(f"{program} is running under supervisord")
        return
    # Done when supervisord calls it RUNNING (up for its startsecs), not merely spawned.
    status = supervisorctl("status")
    yield (f"for i in $(seq 60); do {status} | grep -q RUNNING && break; sleep 1; done; "
           f"{status} | grep -q RUNNING || {{ {status}; exit 1; }}")
    yield _touch(stamp)


def _units(*units: str) -> list[tuple]:
    return [(SystemdUnits, {"unit": unit}) for unit in units]


def _unloaded(states: list[dict], files) -> bool:
    """Whether systemd runs something else than what is on disk for the units of ``states``
    (``SystemdUnits``' answers): a unit file or drop-in changed since it was loaded, or one
    of ``files`` (unit files, drop-ins, whichever run wrote them) not loaded at all."""
    loaded = {path for state in states for path in state.get("loaded", ())}
    return any(state.get("needs_reload") for state in states) or not set(files) <= loaded


@asks(lambda service, kind="service", units=(), **kwargs: [*_units(f"{service}.{kind}", *units),
                                                           *_changes_since(**kwargs)])
@operation()
@chaining
def systemd_running(service: str, restart_sources: list[str], stamp: str, kind: str = "service",
                    units: tuple[str, ...] = (), unit_files: tuple[str, ...] = ()):
    """The unit ``service``.``kind`` (a service, a timer) enabled and active, started after
    the last change to any of ``restart_sources`` (``stamp`` records when the deploy last
    started it). First, as ``systemd_reloaded``: systemd loads what is on disk for ``units``
    (``unit_files``: their files and drop-ins this deploy writes)."""
    unit = f"{service}.{kind}"
    state, changed, *written = facts(*_units(unit), *_changes_since(restart_sources=restart_sources, stamp=stamp),
                                     *_units(*units))
    unloaded = bool(units) and _unloaded(written, unit_files)
    if unloaded:
        yield "systemctl daemon-reload"
    if not state.get("enabled"):
        yield service_commands.shell("systemd", "enable", unit)
    if not state.get("running"):
        yield service_commands.shell("systemd", "start", unit)
    elif changed:
        yield service_commands.shell("systemd", "restart", unit)
    else:
        if state.get("enabled") and not unloaded:
            host.noop(f"{unit} is enabled and running what is on disk")
        return
    yield _touch(stamp)


@asks(lambda units, **_: _units(*units))
@operation()
def systemd_reloaded(units: list[str], files: list[str]):
    """systemd runs what is on disk for ``units``: ``daemon-reload`` when a unit file or
    drop-in changed since it was loaded, or one of ``files`` is not loaded yet, whichever
    run wrote it."""
    if not _unloaded(facts(*_units(*units)), files):
        host.noop(f"systemd has loaded the current {', '.join(units)}")
        return
    yield "systemctl daemon-reload"


@operation()
def wait_until(check: str, what: str, when: Callable[[], bool], timeout: int = 120):
    """After ``when()`` (a start, see ``changed``): wait at most ``timeout`` seconds until the
    shell ``check`` succeeds."""
    if not when():
        host.noop(f"{what} was not (re)started")
        return
    yield waiting(check, what, timeout)


def waiting(check: str, what: str, timeout: int = 120) -> str:
    """A shell loop running ``check`` until it succeeds, failing after ``timeout`` seconds."""
    # Checked five times a second: a deploy waits on every start it makes.
    return (f"i=0; until {check}; do i=$((i+1)); if [ $i -gt {timeout * 5} ]; then "
            f"echo {shlex.quote(f'timed out after {timeout}s waiting for {what}')} >&2; exit 1; fi; "
            "sleep 0.2; done")


@asks(lambda **_: [(PackageManagerActivity, {})])
@operation()
def package_manager_idle(timeout: int = 900):
    """The package manager free for this run: what a killed run left installing is waited for
    (at most ``timeout`` seconds, saying what), then a dpkg cut off half-way is finished."""
    activity = fact(PackageManagerActivity)
    if not activity["running"] and not activity["interrupted"]:
        host.noop("no package manager is running or cut off")
        return
    if activity["running"]:
        names = ", ".join(f"{name} (pid {pid})" for pid, name in activity["running"])
        yield (f"echo {shlex.quote(f'waiting for {names}, left running by an earlier run')} >&2; "
               f"i=0; while {package_manager_running()}; do i=$((i+1)); if [ $i -gt {timeout} ]; then "
               f"echo {shlex.quote(f'{names} still running after {timeout}s')} >&2; exit 1; fi; sleep 1; done")
    yield "if [ -n \"$(ls -A /var/lib/dpkg/updates 2>/dev/null)\" ]; then dpkg --configure -a; fi"


def _uploader() -> str:
    """Who writes uploads on the host: the SSH user (before sudo), else root."""
    if isinstance(host.connector, SSHConnector):
        return host.data.get("ssh_user") or getpass.getuser()
    return "root"


def secret_file(*, dest: str, **kwargs):
    """Plans ``written_secret`` (its arguments), its file in the host's batched fact."""
    want_path(dest, checksum=True)
    return written_secret(dest=dest, **kwargs)


@operation()
@chaining
def written_secret(dest: str, content: str, user: str, group: str, mode: str):
    """``dest`` holding ``content``, which holds a secret: never shown (``--diff`` included)
    and never readable by others on its way: every file it passes through is made 0600
    before the content lands in it; it gets its owner and mode, then is renamed into place."""
    current = path_state(dest, checksum=True)
    if (current and current["type"] == "file"
            and file_checksum(dest) == hashlib.sha256(content.encode()).hexdigest()
            and (current["user"], current["group"], int(str(current["mode"]), 8)) == (user, group, int(mode, 8))):
        host.noop(f"{dest} is as wanted")
        return
    # Through sudo, pyinfra uploads as the SSH user to ``upload``, then copies to ``staged``.
    upload, staged = host.get_temp_filename(f"upload {dest}"), host.get_temp_filename(f"secret {dest}")
    yield StringCommand("install", "-m", "600", "-o", QuoteString(_uploader()), "/dev/null", QuoteString(upload))
    yield StringCommand("install", "-m", "600", "/dev/null", QuoteString(staged))
    yield FileUploadCommand(StringIO(content), staged, remote_temp_filename=upload)
    yield StringCommand("rm", "-f", QuoteString(upload))
    yield StringCommand("chown", QuoteString(f"{user}:{group}"), QuoteString(staged))
    yield StringCommand("chmod", QuoteString(mode), QuoteString(staged))
    yield StringCommand("mv", "-f", QuoteString(staged), QuoteString(dest))


@operation()
def backup_repositories(program: str, names: list[str]):
    """The backup repositories ``names`` exist (``program init`` creates those missing;
    it never touches one that exists)."""
    present = host.get_fact(BackupRepositoriesPresent, program=program)
    if set(names) <= set(present or ()):
        host.noop(f"backup repositories {', '.join(names)} exist")
        return
    yield StringCommand(QuoteString(program), "init")


@operation()
def closed_to_others(directory: str, keep: list[str]):
    """Every entry directly in ``directory`` (but those named in ``keep``) without permissions
    for other accounts: what an earlier umask left open is closed, and its subtree with it."""
    listed = host.get_fact(Command, command=f"find {shlex.quote(directory)} -mindepth 1 -maxdepth 1 "
                                            "! -type l -perm /o=rwx -printf '%f\\n' 2>/dev/null || true")
    opened = [name for name in (listed or "").splitlines() if name and name not in keep]
    if not opened:
        host.noop(f"nothing in {directory} is open to other accounts")
        return
    for name in opened:
        yield f"chmod o-rwx {shlex.quote(f'{directory}/{name}')}"


@operation()
def barrier(what: str):
    """Nothing on the host. Called on every host from one line of deploy.py, it is a single
    operation of them all: pyinfra orders operations per host, so only an operation they
    share makes one host's next ones wait for the others' before it (``what`` says which)."""
    host.noop(what)
    yield from ()


@operation()
def only_entries(directory: str, keep: list[str]):
    """Nothing directly in ``directory`` but the entries named in ``keep``: what an earlier
    run wrote for something no longer in the inventory is removed."""
    listed = host.get_fact(Command, command=f"find {shlex.quote(directory)} -mindepth 1 -maxdepth 1 "
                                            "-printf '%f\\n' 2>/dev/null || true")
    stale = sorted({name for name in (listed or "").splitlines() if name} - set(keep))
    if not stale:
        host.noop(f"{directory} holds only what is wanted")
        return
    for name in stale:
        yield StringCommand("rm", "-rf", QuoteString(f"{directory}/{name}"))


@operation()
def owned_by(tree: str, user: str, group: str):
    """Everything in ``tree`` owned by ``user``:``group`` (a package manager may keep the owners
    its archives record: someone else's uid, on code root runs)."""
    quoted = shlex.quote(tree)
    stray = host.get_fact(Command, command=f"find {quoted} \\( ! -user {shlex.quote(user)} -o ! -group "
                                           f"{shlex.quote(group)} \\) -print -quit 2>/dev/null || true")
    if not stray:
        host.noop(f"everything in {tree} is {user}:{group}'s")
        return
    yield f"chown -R {shlex.quote(f'{user}:{group}')} {quoted}"


@asks(lambda creates, **_: [(PathStates, {"path": creates})])
@operation()
def run_once(command: str, creates: str):
    """Run ``command`` unless ``creates`` is a file or directory (the command's proof of work)."""
    if (path_state(creates) or {}).get("type") in ("file", "directory"):
        host.noop(f"{creates} exists")
        return
    yield command


@asks(lambda target, **_: [(PathStates, {"path": path}) for path in (target, f"{target}.partial")])
@operation()
def complete_directory(target: str, fill: Callable[[str], list[str]], inside: str | None = None,
                       owner: str | None = None):
    """``target``, a directory that exists only complete: made in ``<target>.partial``
    beside it (one filesystem, so the rename is atomic), then renamed into place; once
    ``target`` is a directory, nothing is done.

    ``fill(scratch)`` gives the command, a list of words (each quoted here), that fills
    the empty directory ``scratch``. With ``inside``, the fill leaves the content in
    ``scratch/<inside>`` (an archive's own top directory, which unzip cannot strip): that
    is what is renamed, and the scratch directory is removed after. With ``owner``
    (``user[:group]``), everything is given to it before the rename.

    Convergent: a run killed anywhere leaves no ``target`` or a complete one; the next
    run removes the scratch directory left behind and starts over (with ``inside``, after
    the rename: only removes it). Anything else at ``target`` (a file, a symlink) is
    refused, neither counted as done nor renamed over.
    """
    scratch = f"{target}.partial"
    current = path_state(target)
    if current and current["type"] != "directory":
        raise OperationError(f"{target} exists and is not a directory")
    if current:
        # Only with ``inside`` can a run stop between the rename and the scratch's removal.
        if inside and path_state(scratch) is not None:
            yield shlex.join(["rm", "-rf", scratch])
        else:
            host.noop(f"{target} exists")
        return
    steps = [["rm", "-rf", scratch], ["mkdir", "-p", scratch], fill(scratch)]
    if owner:
        steps.append(["chown", "-R", owner, scratch])
    # -T: renamed as target, never into a directory that appeared there since the check.
    steps.append(["mv", "-T", f"{scratch}/{inside}" if inside else scratch, target])
    if inside:
        steps.append(["rm", "-rf", scratch])
    yield " && ".join(shlex.join(step) for step in steps)


@operation()
def nft_table_loaded(table: str, load: str):
    """The nftables table ``table`` (``family name``) in the kernel: the shell ``load`` run when it
    is not (a site's ``flush ruleset``, a table deleted by hand), whatever its files say."""
    loaded = host.get_fact(Command, command=f"nft list table {table} >/dev/null 2>&1 && echo loaded || true")
    if loaded == "loaded":
        host.noop(f"nftables table {table} is loaded")
        return
    yield load


@operation()
def dnf_repo_enabled(repo: str):
    """Enable a dnf repository shipped disabled (RHEL 9's CodeReady Builder: ``crb``)."""
    enabled = host.get_fact(Command, command=f"dnf repolist --enabled -q {repo} 2>/dev/null || true")
    if enabled and repo in enabled:
        host.noop(f"dnf repository {repo} is enabled")
        return
    yield f"dnf config-manager --set-enabled {repo}"

"""Backups with restic: the database (pg_dump's custom format, the roles, a manifest of
every table) and the binary repository, into an encrypted repository on the host and/or
on the ``omero_backup`` host over SFTP; run by a systemd timer or, under supervisord, by
``omero-backup schedule``. The restore command, the drill and the reasons: docs/backup.md.
"""

import json
import shlex
from io import StringIO

from pyinfra import host
from pyinfra.api import FactBase, QuoteString, StringCommand, operation
from pyinfra.operations import files

from . import kit, services, system_operations
from .grammar import timer_lines
from .operations import backup_repositories, refreshed, secret_file
from .topology import BACKUP_REPOSITORY, DATABASE, SERVER, SFTP_HOST_ALIAS, WEB

# On the omero_backup host: each account's authorized key, and how sshd confines the accounts.
BACKUP_KEYS_DIR = "/etc/ssh/omero-backup-keys"
BACKUP_SSHD_DROP_IN = "/etc/ssh/sshd_config.d/omero-backup.conf"
# The program's modules (files/omero_backup), where the launcher files/omero-backup looks first.
BACKUP_LIB_DIR = "/usr/local/lib/omero-backup"


def _install(settings) -> None:
    package = f"{BACKUP_LIB_DIR}/omero_backup"
    for path in (BACKUP_LIB_DIR, package):
        kit.directory(name=f"Create {path}", path=path, user="root", group="root", mode="755")
    for module in sorted((kit.FILES / "omero_backup").glob("*.py")):
        kit.put(name=f"Install omero-backup's {module.name}", src=str(module), dest=f"{package}/{module.name}",
                user="root", group="root", mode="644")
    kit.put(name="Install omero-backup", src=str(kit.FILES / "omero-backup"), dest=settings.backup_program,
            user="root", group="root", mode="755")
    # One program: as omero-restore it restores.
    files.link(name="Install omero-restore", path=settings.restore_program, target=settings.backup_program,
               user="root", group="root")


def _service_commands(settings) -> dict[str, list[list[str]]]:
    """How a restore stops and starts what uses the database and the files on this host."""
    names = [name for role, name in ((SERVER, "omero-server"), (WEB, "omero-web")) if role in settings.roles]
    return {"stop": services.action_argvs(settings, "stop", names[::-1]),
            "start": services.action_argvs(settings, "start", names)}


def _config(settings) -> str:
    sftp = f"ssh -F {settings.backup_ssh_config} {SFTP_HOST_ALIAS} -s sftp"
    database = DATABASE in settings.roles
    config = {
        "host": host.name,
        "repositories": [{"name": name, "url": url, "sftp_command": sftp if url.startswith("sftp:") else None}
                         for name, url in settings.backup_repositories],
        "password_file": settings.backup_password_file,
        "cache_dir": settings.backup_cache_dir,
        "state_dir": settings.backup_state_dir,
        "dump_dir": settings.backup_dump_dir,
        "database": {"name": settings.db_name, "port": settings.db_port,
                     "bin_dir": settings.platform.postgres_bin_dir} if database else None,
        "data_dir": settings.data_dir,
        "data_dir_required": SERVER in settings.roles,
        "excludes": list(settings.backup_excludes),
        "link_targets": settings.backup_link_targets,
        "keep": settings.backup_keep,
        "check_read_data": settings.backup_check_read_data,
        "schedule": settings.backup_schedule,
        "check_schedule": settings.backup_check_schedule,
        "services": _service_commands(settings),
    }
    return json.dumps(config, indent=2, sort_keys=True) + "\n"


def configure(settings) -> list[str]:
    """The program, its configuration and credentials, the repositories; returns the files
    a scheduler restart applies."""
    _install(settings)
    for path, mode in ((settings.backup_config_dir, "700"), (settings.backup_state_dir, "755"),
                       (settings.backup_cache_dir, "700")):
        kit.directory(name=f"Create {path}", path=path, user="root", group="root", mode=mode)
    if DATABASE in settings.roles:
        # pg_dump and psql run as postgres and write here.
        kit.directory(name="Create the database dump directory", path=settings.backup_dump_dir,
                      user="postgres", group="postgres", mode="700")
    if settings.backup_local_dir:
        kit.directory(name="Create the local backup repository's directory", path=settings.backup_local_dir,
                      user="root", group="root", mode="700")
    secret_file(name="Give restic the repository password", content=settings.backup_password + "\n",
                dest=settings.backup_password_file, user="root", group="root", mode="600")
    if settings.backup_remote:
        secret_file(name="Give backups their SSH key for the backup host", content=settings.backup_ssh_key,
                    dest=settings.backup_ssh_key_file, user="root", group="root", mode="600")
        kit.template("backup/ssh_config.j2", settings.backup_ssh_config, alias=SFTP_HOST_ALIAS,
                     backup_remote=settings.backup_remote, backup_ssh_key_file=settings.backup_ssh_key_file,
                     backup_state_dir=settings.backup_state_dir)
    kit.put(name=f"Write {settings.backup_config_file}", src=StringIO(_config(settings)),
            dest=settings.backup_config_file, user="root", group="root", mode="600")
    backup_repositories(name="Create the backup repositories", program=settings.backup_program,
                        names=[name for name, _ in settings.backup_repositories])
    return [settings.backup_program, f"{BACKUP_LIB_DIR}/omero_backup/*.py", settings.backup_config_file]


def schedule(settings, restart_sources: list[str]) -> None:
    if settings.service_manager == "supervisord":
        services.program(settings, "omero-backup-schedule",
                         command=f"{settings.backup_program} schedule", user="root")
        services.start(settings, "omero-backup-schedule", restart_sources=restart_sources)
        return
    writable = [settings.backup_state_dir, settings.backup_cache_dir]
    if settings.backup_local_dir:
        writable.append(settings.backup_local_dir)
    for service, job, description, when in (
            ("omero-backup", "run", "OMERO backup", settings.backup_schedule),
            ("omero-backup-check", "check", "OMERO backup repository check", settings.backup_check_schedule)):
        kit.template("backup/omero-backup.service.j2", f"/etc/systemd/system/{service}.service",
                     service=service, job=job, description=description, writable=writable,
                     backup_program=settings.backup_program, roles=settings.roles,
                     postgres_unit=settings.platform.postgres_unit)
        services.timer(settings, service, timer_lines(when), description)


class _BackupLayout(FactBase):
    """What is left to do to move an OMERO host's repository into its chroot: ``old`` (the
    repository is still ``<base>/<name>`` itself, restic's ``config`` in it) and/or
    ``moving`` (set aside at ``<base>/.<name>.moving`` by a run that stopped)."""

    default = list

    def command(self, base: str, directory_name: str) -> str:
        directory = shlex.quote(f"{base}/{directory_name}")
        moving = shlex.quote(f"{base}/.{directory_name}.moving")
        return (f"if [ -f {directory}/config ]; then echo old; fi; "
                f"if [ -d {moving} ]; then echo moving; fi")

    def process(self, output) -> list[str]:
        return [line.strip() for line in output if line.strip()]


class _DirectoryEntries(FactBase):
    """The names in a directory (none when it is missing)."""

    default = list

    def command(self, path: str) -> str:
        return f"ls -A1 {shlex.quote(path)} 2>/dev/null || true"

    def process(self, output) -> list[str]:
        return [line for line in output if line]


@operation()
def _repository_in_chroot(base: str, directory_name: str, account: str, group: str):
    """The repository an OMERO host kept at ``<base>/<name>`` (before chroots) moved to
    ``<base>/<name>/repository``, owned by ``account``: set aside, handed over, moved in.
    Each step is decided from what is there, so a run killed in between is finished by the next."""
    state = host.get_fact(_BackupLayout, base=base, directory_name=directory_name)
    directory, moving = f"{base}/{directory_name}", f"{base}/.{directory_name}.moving"
    if not state:
        host.noop(f"{directory} holds no repository of the old layout")
        return
    if "old" in state:
        yield StringCommand("mv", "-T", QuoteString(directory), QuoteString(moving))
    yield StringCommand("chown", "-R", QuoteString(f"{account}:{group}"), QuoteString(moving))
    yield StringCommand("mkdir", "-p", "-m", "755", QuoteString(directory))
    yield StringCommand("mv", "-T", QuoteString(moving), QuoteString(f"{directory}{BACKUP_REPOSITORY}"))


@operation()
def _only_files(directory: str, keep: list[str]):
    """``directory`` holds no file but ``keep`` (a host removed from the inventory loses its key)."""
    stale = sorted(set(host.get_fact(_DirectoryEntries, path=directory)) - set(keep))
    if not stale:
        host.noop(f"{directory} holds only the current hosts' files")
        return
    for name in stale:
        yield StringCommand("rm", "-rf", "--", QuoteString(f"{directory}/{name}"))


def _sshd_reload(settings) -> str:
    if settings.service_manager == "systemd":
        unit = "ssh.service" if settings.platform.is_debian else "sshd.service"
        # Not started yet (socket-activated on Ubuntu 24.04): it reads the file when it starts.
        return f"systemctl try-reload-or-restart {unit}"
    return "if [ -s /run/sshd.pid ]; then kill -HUP \"$(cat /run/sshd.pid)\"; fi"


def target(settings) -> None:
    """The omero_backup host: per OMERO host an account, chrooted by sshd into a root-owned
    directory holding only that host's repository, which it reaches over SFTP alone with
    its own key (see docs/backup.md)."""
    group, base = settings.backup_user, settings.backup_remote_dir
    # sshd's drop-in confines every member of this group, whichever host it is for.
    system_operations.group(name=f"Create the group {group}", group=group, system=True)
    kit.directory(name="Create the backup repositories' directory", path=base, user="root", group="root",
                  mode="755")
    for name, account, _ in settings.backup_clients:
        chroot = f"{base}/{name}"
        # No shell: sshd runs internal-sftp itself.
        system_operations.user(name=f"Create the user {account}", user=account, group=group, system=True, home=chroot,
                    shell="/usr/sbin/nologin", ensure_home=False)
        _repository_in_chroot(name=f"Move the repository of {name} into its chroot", base=base,
                              directory_name=name, account=account, group=group)
        # sshd chroots only into a directory that root owns and no one else can write.
        kit.directory(name=f"Create the chroot of {name}", path=chroot, user="root", group="root", mode="755")
        kit.directory(name=f"Create the repository directory of {name}", path=chroot + BACKUP_REPOSITORY,
                      user=account, group=group, mode="700")
    # Keys outside the chroots and root's: an account can neither read nor replace them.
    kit.directory(name=f"Create {BACKUP_KEYS_DIR}", path=BACKUP_KEYS_DIR, user="root", group="root", mode="755")
    for name, account, key in settings.backup_clients:
        kit.put(name=f"Allow the key of {name}", src=StringIO(f"restrict {key}\n"),
                dest=f"{BACKUP_KEYS_DIR}/{account}", user="root", group="root", mode="644")
    _only_files(name="Remove the keys of hosts no longer in the inventory", directory=BACKUP_KEYS_DIR,
                keep=[account for _, account, _ in settings.backup_clients])
    # Before chroots every host logged in as one account with these keys.
    kit.file(name=f"Remove {base}/.ssh/authorized_keys", path=f"{base}/.ssh/authorized_keys", present=False)
    kit.directory(name=f"Remove {base}/.ssh", path=f"{base}/.ssh", present=False)
    kit.template("backup/sshd_config.j2", BACKUP_SSHD_DROP_IN, match_group=group, keys_dir=BACKUP_KEYS_DIR,
                 repository=BACKUP_REPOSITORY)
    # An sshd_config that sshd refuses would keep sshd from starting: it is taken away again.
    # The effective settings of an account prove that sshd reads the drop-in at all.
    checks = [f"/usr/sbin/sshd -t || {{ rm -f {BACKUP_SSHD_DROP_IN}; exit 1; }}"]
    if settings.backup_clients:
        account = shlex.quote(settings.backup_clients[0][1])
        checks.append(f"/usr/sbin/sshd -T -C user={account},host=localhost,addr=127.0.0.1 | grep -qx "
                      f"'forcecommand internal-sftp -d {BACKUP_REPOSITORY}' || {{ echo 'sshd does not read "
                      f"{BACKUP_SSHD_DROP_IN} (no Include of sshd_config.d in /etc/ssh/sshd_config)' >&2; exit 1; }}")
    refreshed(name="Check the SSH server's configuration, then reload it",
              commands=[*checks, _sshd_reload(settings)], sources=[BACKUP_SSHD_DROP_IN],
              stamp=settings.stamp("sshd-reloaded"))

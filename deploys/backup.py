"""Backups with restic: the database (pg_dump's custom format, the roles, a manifest of
every table) and the binary repository, into an encrypted repository on the host and/or
on the ``omero_backup`` host over SFTP; run by a systemd timer or, under supervisord, by
``omero-backup schedule``. The restore command, the drill and the reasons: docs/backup.md.
"""

import json
from io import StringIO

from pyinfra.operations import apt, dnf, files, server

from . import services
from .operations import backup_repositories, secret_file
from .prerequisites import FILES
from .settings import DATABASE, SERVER, SFTP_HOST_ALIAS, WEB, timer_lines


def _install(settings) -> None:
    packages = ["restic", "openssh-client" if settings.platform.is_debian else "openssh-clients"]
    if settings.platform.is_debian:
        apt.packages(name="Install restic", packages=packages, no_recommends=True)
    else:
        dnf.packages(name="Enable EPEL (restic)", packages=["epel-release"])
        dnf.packages(name="Install restic", packages=packages)
    files.put(name="Install omero-backup", src=str(FILES / "omero-backup"), dest=settings.backup_program,
              user="root", group="root", mode="755")
    # One program: as omero-restore it restores.
    files.link(name="Install omero-restore", path=settings.restore_program, target=settings.backup_program,
               user="root", group="root")


def _service_commands(settings) -> dict[str, list[list[str]]]:
    """How a restore stops and starts what uses the database and the files on this host."""
    names = [name for role, name in ((SERVER, "omero-server"), (WEB, "omero-web")) if role in settings.roles]
    if settings.service_manager == "supervisord":
        ctl = ["supervisorctl", "-c", settings.platform.supervisor_conf]
        return {"stop": [[*ctl, "stop", name] for name in reversed(names)],
                "start": [[*ctl, "start", name] for name in names]}
    return {"stop": [["systemctl", "stop", f"{name}.service"] for name in reversed(names)],
            "start": [["systemctl", "start", f"{name}.service"] for name in names]}


def _config(settings, host_name: str) -> str:
    sftp = f"ssh -F {settings.backup_ssh_config} {SFTP_HOST_ALIAS} -s sftp"
    database = DATABASE in settings.roles
    config = {
        "host": host_name,
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
        "keep": settings.backup_keep,
        "check_read_data": settings.backup_check_read_data,
        "schedule": settings.backup_schedule,
        "check_schedule": settings.backup_check_schedule,
        "services": _service_commands(settings),
    }
    return json.dumps(config, indent=2, sort_keys=True) + "\n"


def configure(settings, host_name: str) -> list[str]:
    """The program, its configuration and credentials, the repositories; returns the files
    a scheduler restart applies."""
    _install(settings)
    for path, mode in ((settings.backup_config_dir, "700"), (settings.backup_state_dir, "755"),
                       (settings.backup_cache_dir, "700")):
        files.directory(name=f"Create {path}", path=path, user="root", group="root", mode=mode)
    if DATABASE in settings.roles:
        # pg_dump and psql run as postgres and write here.
        files.directory(name="Create the database dump directory", path=settings.backup_dump_dir,
                        user="postgres", group="postgres", mode="700")
    if settings.backup_local_dir:
        files.directory(name="Create the local backup repository's directory", path=settings.backup_local_dir,
                        user="root", group="root", mode="700")
    secret_file(name="Give restic the repository password", content=settings.backup_password + "\n",
                dest=settings.backup_password_file, user="root", group="root", mode="600")
    if settings.backup_remote:
        secret_file(name="Give backups their SSH key for the backup host", content=settings.backup_ssh_key,
                    dest=settings.backup_ssh_key_file, user="root", group="root", mode="600")
        services.template(settings, "backup/ssh_config.j2", settings.backup_ssh_config, alias=SFTP_HOST_ALIAS)
    files.put(name=f"Write {settings.backup_config_file}", src=StringIO(_config(settings, host_name)),
              dest=settings.backup_config_file, user="root", group="root", mode="600")
    backup_repositories(name="Create the backup repositories", program=settings.backup_program,
                        names=[name for name, _ in settings.backup_repositories])
    return [settings.backup_program, settings.backup_config_file]


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
        services.template(settings, "backup/omero-backup.service.j2", f"/etc/systemd/system/{service}.service",
                          service=service, job=job, description=description, writable=writable)
        services.timer(settings, service, timer_lines(when), description)


def target(settings) -> None:
    """The omero_backup host: an SFTP-only account, a directory per OMERO host, each host's
    key allowed into its own directory only at login (sftp-server -d; see docs/backup.md)."""
    platform = settings.platform
    if platform.is_debian:
        apt.packages(name="Install the SSH server (SFTP)", packages=platform.sftp_server_packages,
                     no_recommends=True)
    else:
        dnf.packages(name="Install the SSH server (SFTP)", packages=platform.sftp_server_packages)
    user, base = settings.backup_user, settings.backup_remote_dir
    server.group(name=f"Create the group {user}", group=user, system=True)
    # A shell, since sshd runs the forced command through it; the key allows nothing else.
    server.user(name=f"Create the user {user}", user=user, group=user, system=True, home=base, shell="/bin/sh",
                ensure_home=False)
    # Root-owned down to authorized_keys: over SFTP the account cannot change its own keys.
    files.directory(name="Create the backup repositories' directory", path=base, user="root", group="root",
                    mode="755")
    files.directory(name=f"Create {base}/.ssh", path=f"{base}/.ssh", user="root", group="root", mode="755")
    services.template(settings, "backup/authorized_keys.j2", f"{base}/.ssh/authorized_keys",
                      sftp_server=platform.sftp_server)
    for name, _ in settings.backup_clients:
        files.directory(name=f"Create the repository directory of {name}", path=f"{base}/{name}",
                        user=user, group=user, mode="700")

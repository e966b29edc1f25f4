"""A PostgreSQL standby (omero_database_standby) streaming from the omero_database host:
on the primary its role, pg_hba line (database.configure) and slot, and, once the standby
streams, synchronous commits when asked for; on the standby, PostgreSQL as on the primary,
its cluster a base backup of the primary's. Both get the command showing the replication's
state and lag, which also promotes the standby (docs/standby.md)."""

import shlex

from . import database, kit, services
from .database_operations import (
    postgres_reloaded,
    postgres_role,
    replication_slot,
    standby_cluster,
)
from .operations import secret_file
from .topology import SLOT_PREFIX

AS_POSTGRES = database.AS_POSTGRES


def primary(settings) -> None:
    """On the omero_database host, PostgreSQL running: the standby's role and slot (a slot of a
    standby taken out of the inventory dropped)."""
    if settings.standby_address:
        postgres_role(name=f"Create the replication role {settings.replication_user}",
                      role=settings.replication_user, password=settings.replication_password,
                      port=settings.db_port, replication=True, **AS_POSTGRES)
    replication_slot(name="Keep the standby's replication slot",
                     slot=settings.standby_slot if settings.standby_address else None,
                     prefix=SLOT_PREFIX, port=settings.db_port, **AS_POSTGRES)
    if settings.standby_address:
        command(settings)
    # A promoted standby's: a primary streams from nothing.
    kit.file(name=f"Remove {_passfile(settings)}", path=_passfile(settings), present=False)


def prepare_standby(settings) -> None:
    """On the omero_database_standby host: PostgreSQL installed, the role's password in its passfile."""
    database.install(settings)
    secret_file(name=f"Write {_passfile(settings)}", dest=_passfile(settings), user="postgres", group="postgres",
                mode="600", content=":".join(_pgpass_field(field) for field in (
                    settings.database_address, str(settings.db_port), "replication", settings.replication_user,
                    settings.replication_password)) + "\n")


def follow(settings) -> None:
    """On the omero_database_standby host, once the primary is ready: its cluster a copy of the
    primary's, following it, and running."""
    platform = settings.platform
    passfile = _passfile(settings)
    # Debian's cluster unit too: postgresql.service, which starting again starts it, may be stopped already.
    stop = services.action_command(settings, "stop", "postgresql")
    if settings.service_manager == "systemd" and platform.postgres_unit != "postgresql.service":
        stop = f"systemctl stop {shlex.quote(platform.postgres_unit)} && {stop}"
    pg_ctl = shlex.join(["runuser", "-u", "postgres", "--", f"{platform.postgres_bin_dir}/pg_ctl", "status",
                         "-D", platform.postgres_data_dir])
    standby_cluster(
        name=f"Make PostgreSQL a standby of {settings.database_address}",
        data_dir=platform.postgres_data_dir,
        conninfo={"host": settings.database_address, "port": settings.db_port, "user": settings.replication_user,
                  "application_name": settings.standby_slot, "passfile": passfile},
        slot=settings.standby_slot,
        # Stopped for sure before the swap: supervisorctl fails where supervisord is not running yet.
        stop=(f"{{ {stop} || true; }} && if {pg_ctl} >/dev/null; then echo 'PostgreSQL still runs in "
              f"{platform.postgres_data_dir}' >&2; exit 1; fi"),
        pg_basebackup=f"{platform.postgres_bin_dir}/pg_basebackup",
        group_file=f"{settings.state_dir}/standby-base-backup.pgid",
    )
    # After the copy: on RHEL the configuration lives in the data directory the copy replaced,
    # and a promoted standby must not wait for a standby of its own.
    config_files = database.configure(settings)
    kit.file(name=f"Remove {_synchronous_file(settings)}", path=_synchronous_file(settings), present=False)
    database.run(settings, config_files)
    command(settings)


def synchronous(settings) -> None:
    """On the omero_database host, after the standby's steps: commits wait for the standby
    when it is synchronous; without one (taken out of the inventory) they never do."""
    path = _synchronous_file(settings)
    names = settings.standby_slot if settings.standby_address and settings.standby_synchronous else ""
    if names:
        kit.template("postgresql/omero-standby.conf.j2", path, user="postgres", group="postgres", mode="644",
                     names=names)
    else:
        kit.file(name=f"Remove {path}", path=path, present=False)
    postgres_reloaded(name="Apply synchronous_standby_names", setting="synchronous_standby_names",
                      wanted=names, port=settings.db_port, **AS_POSTGRES)


def _synchronous_file(settings) -> str:
    return f"{settings.platform.postgres_conf_dir}/conf.d/omero-standby.conf"


def _passfile(settings) -> str:
    return f"{settings.platform.postgres_home}/omero-replication.pgpass"


def command(settings) -> None:
    kit.template("postgresql/omero-database-replication.j2", settings.replication_command, mode="755",
                 port=settings.db_port)


def _pgpass_field(value: str) -> str:
    """A field of a .pgpass line: ':' and '\\' escaped."""
    return value.replace("\\", "\\\\").replace(":", "\\:")

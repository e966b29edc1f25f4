"""PostgreSQL and OMERO schema operations, idempotent as those of operations.py: the roles,
the database, a standby's replication (slot, base backup, settings), the schema created once
and upgraded, the dump before an upgrade."""

import re
import shlex

from pyinfra import host
from pyinfra.api import OperationError, QuoteString, StringCommand, operation
from pyinfra.api.hiddenvalue import HiddenValue
from pyinfra.facts.postgres import make_execute_psql_command
from pyinfra.facts.server import Command

from facts.omero import (
    ChangedSince,
    OmeroSchemaVersion,
    OmeroServerVersion,
    PostgresDatabaseOwner,
    PostgresRoleVerifier,
)
from facts.replication import (
    PostgresListening,
    PostgresReplicationSlots,
    PostgresRoleReplication,
    PostgresSetting,
    PostgresStandby,
)

from . import scram, server_steps
from .batched import asks, fact, facts
from .chained import chaining


def _asked_as_postgres(cls, arguments: dict, _su_user=None, port=5432, **_):
    """``cls`` wanted with ``arguments`` and the operation's ``port``, answered in the batch as
    the operation's user (the rest of the operation's keyword arguments are not the fact's)."""
    return (cls, {**arguments, "port": port}, _su_user)


@asks(lambda role, replication=False, **kwargs: [
    _asked_as_postgres(PostgresRoleVerifier, {"role": role}, **kwargs),
    *([_asked_as_postgres(PostgresRoleReplication, {"role": role}, **kwargs)] if replication else [])])
@operation()
def postgres_role(role: str, password: str, port: int = 5432, replication: bool = False):
    """A login role whose password is ``password``; only its SCRAM verifier is sent. With
    ``replication``, a role that may stream WAL (a standby's) and nothing more."""
    current = fact(PostgresRoleVerifier, role=role, port=port)
    attributes = "LOGIN"
    if replication:
        attributes = "LOGIN REPLICATION"
        streams = fact(PostgresRoleReplication, role=role, port=port)
    if current is not None and scram.scram_matches(password, current) and (not replication or streams):
        host.noop(f"role {role} exists with the wanted password")
        return
    verb = "CREATE" if current is None else "ALTER"
    verifier = HiddenValue(scram.scram_verifier(password))
    yield make_execute_psql_command(
        StringCommand(f'{verb} ROLE "{role}" {attributes} PASSWORD',
                      StringCommand("'", verifier, "'", _separator="")),
        port=port,
    )


@asks(lambda database, **kwargs: [_asked_as_postgres(PostgresDatabaseOwner, {"database": database}, **kwargs)])
@operation()
def postgres_database(database: str, owner: str, port: int = 5432):
    """A UTF8 database owned by ``owner``."""
    current = fact(PostgresDatabaseOwner, database=database, port=port)
    if current is None:
        yield make_execute_psql_command(
            f'CREATE DATABASE "{database}" OWNER "{owner}" ENCODING \'UTF8\' TEMPLATE template0',
            port=port)
    elif current[1] != "UTF8":
        raise OperationError(f"database {database} exists with encoding {current[1]}, not UTF8")
    elif current[0] != owner:
        yield make_execute_psql_command(f'ALTER DATABASE "{database}" OWNER TO "{owner}"', port=port)
    else:
        host.noop(f"database {database} exists, UTF8, owned by {owner}")


def _connection(db: dict) -> str:
    """psql/pg_dump options reaching the OMERO database as its role (with -w: ~/.pgpass)."""
    return (f"-h {shlex.quote(db['host'])} -p {db['port']} -U {shlex.quote(db['user'])} "
            f"-d {shlex.quote(db['name'])}")


def _schema_version(db: dict) -> str | None:
    return host.get_fact(OmeroSchemaVersion, host=db["host"], port=db["port"],
                         database=db["name"], user=db["user"])


@operation()
def omero_schema(omero: str, omerodir: str, db: dict, script_dir: str, root_password: str):
    """Create the OMERO schema once; never on a database that has one.

    ``omero db script`` writes the SQL (with the root password's hash) to a file only the
    server user can read, it is applied with psql, then removed.
    """
    version = _schema_version(db)
    if version is not None:
        host.noop(f"the database already holds OMERO schema {version}")
        return
    script = f"{script_dir}/{server_steps.SCHEMA_SCRIPT}"
    env = f"OMERODIR={shlex.quote(omerodir)}"
    psql = f"psql -XAw -v ON_ERROR_STOP=1 {_connection(db)}"
    *words, password = server_steps.schema_script(omero, script, root_password)
    yield StringCommand("umask 077 &&", env, *map(QuoteString, words), QuoteString(HiddenValue(password)))
    yield f"{psql} -f {shlex.quote(script)} && rm -f {shlex.quote(script)}"


@operation()
def stop_and_dump_before_upgrade(symlink: str, version: str, stop: str, user: str, dump_dir: str,
                                 db: dict, backup_program: str | None = None):
    """When ``symlink`` points at another OMERO.server version than ``version``: stop that
    server and dump the database (as ``user``, with its .pgpass) before anything moves;
    with ``backup_program``, the dump goes into the host's backup repositories too."""
    installed = host.get_fact(OmeroServerVersion, symlink=symlink)
    if installed in (None, version):
        host.noop(f"OMERO.server {version} is not an upgrade here")
        return
    yield stop
    dump = f"{dump_dir}/{db['name']}-{installed}-before-{version}.pgdump"
    yield f"runuser -u {shlex.quote(user)} -- pg_dump -w -Fc {_connection(db)} -f {shlex.quote(dump)}"
    if backup_program:
        yield StringCommand(QuoteString(backup_program), "add", QuoteString(dump))


@operation()
def omero_schema_upgrade(omerodir: str, db: dict):
    """Apply the new server's upgrade scripts when its schema is newer than the database's."""
    current = _schema_version(db)
    if current is None:
        host.noop("no schema yet: it will be created, not upgraded")
        return
    # Upgrade scripts are named sql/psql/<new version>/<old version>.sql.
    scripts = host.get_fact(Command, command=(
        f"ls {shlex.quote(omerodir)}/sql/psql/*/{shlex.quote(current)}.sql 2>/dev/null || true"))
    if not scripts:
        host.noop(f"schema {current} needs no upgrade")
        return
    psql = f"psql -XAw -v ON_ERROR_STOP=1 {_connection(db)}"
    for script in scripts.split():
        yield f"{psql} -f {shlex.quote(script)}"


@asks(lambda sources, stamp, port, **_: [(ChangedSince, {"paths": tuple(sources), "reference": stamp}),
                                         (PostgresListening, {"port": port})])
@operation()
@chaining
def postgres_configured(sources: list[str], stamp: str, listen_addresses: str, port: int, reload: str,
                        restart: str):
    """The running server reads its configuration files (``sources``) as they are on disk
    (``stamp`` records when it last did): reloaded after a change, restarted only when it
    listens elsewhere than ``listen_addresses`` and ``port``, which a restart alone changes
    (a reload keeps OMERO.server's connections, which a restart drops)."""
    changed, listening = facts((ChangedSince, {"paths": tuple(sources), "reference": stamp}),
                               (PostgresListening, {"port": port}))
    if not changed:
        host.noop(f"PostgreSQL has read its configuration since it last changed ({stamp})")
        return
    yield reload if listening == (listen_addresses, str(port)) else restart
    yield StringCommand("touch", QuoteString(stamp))


@asks(lambda prefix, **kwargs: [_asked_as_postgres(PostgresReplicationSlots, {"prefix": prefix}, **kwargs)])
@operation()
@chaining
def replication_slot(slot: str | None, prefix: str, port: int = 5432):
    """The physical replication slot ``slot`` (None: no standby) and no other slot named
    ``prefix``...: one a removed standby left would keep WAL on the primary for ever. A slot
    in use is left until its standby has gone."""
    slots = fact(PostgresReplicationSlots, prefix=prefix, port=port)
    if slot is not None and slot not in slots:
        yield make_execute_psql_command(f"SELECT pg_create_physical_replication_slot('{slot}')", port=port)
    for name, active in sorted(slots.items()):
        if name != slot and not active:
            yield make_execute_psql_command(f"SELECT pg_drop_replication_slot('{name}')", port=port)
    if (slot is None or slot in slots) and all(name == slot or active for name, active in slots.items()):
        host.noop(f"the replication slots are {', '.join(sorted(slots)) or 'none'}")


@asks(lambda setting, **kwargs: [_asked_as_postgres(PostgresSetting, {"setting": setting}, **kwargs)])
@operation()
def postgres_reloaded(setting: str, wanted: str, port: int = 5432):
    """The running server's ``setting`` is ``wanted`` (as the configuration files now say):
    the configuration is reloaded when it is not, whichever run wrote the files."""
    if fact(PostgresSetting, setting=setting, port=port) == wanted:
        host.noop(f"PostgreSQL runs with {setting} = {wanted!r}")
        return
    yield make_execute_psql_command("SELECT pg_reload_conf()", port=port)


@operation()
def standby_cluster(data_dir: str, conninfo: dict, slot: str, stop: str, pg_basebackup: str, group_file: str):
    """``data_dir`` a standby of the primary ``conninfo`` (libpq keywords: host, port, user,
    application_name, passfile) through ``slot``: left alone when it already follows it (its
    standby.signal, primary_conninfo and slot), otherwise made anew by ``pg_basebackup -R``
    (WAL streamed, the slot) into ``<data_dir>.partial``, and only once that is complete the
    server stopped (``stop``) and the new directory swapped in.

    Convergent: a run killed during the copy leaves the old directory in place and a partial
    one that the next run removes first. The copy runs in a process group of its own, recorded
    in ``group_file`` until it ends: what a killed run left of it (a copy that outlived its
    connection, hung or not) is killed by the next one before it starts again; a recorded
    group that is no longer that copy (ended at a reboot, its number reused) is left alone.
    """
    found = host.get_fact(PostgresStandby, data_dir=data_dir)
    following = {key: found["conninfo"].get(key) for key in ("host", "port", "user", "application_name")}
    if found["standby"] and found["slot"] == slot and following == {
            key: str(conninfo[key]) for key in following}:
        host.noop(f"{data_dir} is a standby of {conninfo['host']} through {slot}")
        return
    partial, old = f"{data_dir}.partial", f"{data_dir}.old"
    dsn = " ".join(f"{key}={_conninfo_value(str(value))}" for key, value in conninfo.items())
    copy = " && ".join([
        shlex.join(["rm", "-rf", partial]),
        shlex.join(["install", "-d", "-o", "postgres", "-g", "postgres", "-m", "700", partial]),
        shlex.join(["runuser", "-u", "postgres", "--", pg_basebackup, "-D", partial, "-d", dsn, "-w", "-R",
                    "-X", "stream", "-S", slot, "-c", "fast"])])
    steps = [
        record_group(group_file),
        shlex.join(["rm", "-rf", old]),
        # Tried again a few times: the slot stays taken until the primary sees a killed copy's
        # connection gone, and a primary may be restarting.
        f"{{ n=0; until {copy}; do n=$((n+1)); [ $n -lt 5 ] || exit 1; sleep 3; done; }}",
        stop,
        f"if [ -e {shlex.quote(data_dir)} ]; then {shlex.join(['mv', '-T', data_dir, old])}; fi",
        shlex.join(["mv", "-T", partial, data_dir]),
        shlex.join(["rm", "-rf", old, group_file]),
    ]
    yield f"{kill_recorded_group(group_file)}; setsid -w sh -ec {shlex.quote(' && '.join(steps))}"


def record_group(path: str) -> str:
    """Shell: this shell's process group (it leads one, made by ``setsid``) recorded in ``path``
    with when it started, for ``kill_recorded_group``."""
    return f"echo \"$$ {_process_start('$$')}\" > {shlex.quote(path)}"


def kill_recorded_group(path: str) -> str:
    """Shell: the process group recorded in ``path`` (``record_group``) killed if its leader is
    still the process that recorded it; a group that has ended, its number since given to another
    process (a reboot, a restarted container), is left alone."""
    quoted = shlex.quote(path)
    # `kill -s KILL --`: the form dash takes too (it refuses `-KILL --`).
    return (f"if [ -s {quoted} ]; then read -r pgid started < {quoted}; "
            f"if [ \"$started\" = \"{_process_start('$pgid')}\" ]; then kill -s KILL -- \"-$pgid\"; fi; fi")


def _process_start(pid: str) -> str:
    """Shell words naming when process ``pid`` (a shell expansion) started, which its pid alone
    does not: its start in clock ticks since boot (field 22 of /proc/<pid>/stat, counted after
    its name, which may hold spaces; empty when there is no such process) and the boot's id."""
    return (f"$(sed 's/.*) //' /proc/\"{pid}\"/stat 2>/dev/null | cut -d' ' -f20) "
            "$(cat /proc/sys/kernel/random/boot_id)")


def _conninfo_value(value: str) -> str:
    """A libpq connection string value: as it is when plain, else quoted with \\ and ' escaped."""
    if value and not re.search(r"[\s'\\]", value):
        return value
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"

"""OMERO.server: the site's zip unpacked to a versioned directory behind the ``OMERO.server``
symlink, configured from files, schema created once, upgraded in place on a version change."""

import shlex
from io import StringIO

from pyinfra.operations import apt, dnf, files

from . import services
from .operations import (
    changed,
    omero_schema,
    omero_schema_upgrade,
    run_once,
    shell_when,
    stop_and_dump_before_upgrade,
    wait_until,
)
from .prerequisites import fetch, install_ice, install_java, omero_venv
from .users import as_user, omero_user



def _omero(settings) -> str:
    return f"OMERODIR={settings.server_symlink} {settings.server_basedir}/venv3/bin/omero"


def _db(settings) -> dict:
    return {"host": settings.database_address, "port": settings.db_port,
            "name": settings.db_name, "user": settings.db_user}


def install(settings) -> list:
    install_java(settings)
    install_ice(settings)
    client = settings.platform.postgres_client_package
    if settings.platform.is_debian:
        apt.packages(name="Install the PostgreSQL client", packages=[client], no_recommends=True)
    else:
        dnf.packages(name="Install the PostgreSQL client", packages=[client])
    omero_user(settings, settings.server_user)
    files.directory(name="Create the OMERO.server base directory", path=settings.server_basedir,
                    user="root", group="root", mode="755")
    venv_changes = omero_venv(settings, f"{settings.server_basedir}/venv3", [
        f"omero-py=={settings.py_version}", "omero-certificates",
    ])
    data_dir = settings.data_dir
    files.directory(name="Create the OMERO data directory", path=data_dir,
                    user=settings.server_user, group=settings.group, mode="755")
    # In-place import: the repository group-writable, new files inheriting the group.
    files.directory(name="Create the managed repository", path=f"{data_dir}/ManagedRepository",
                    user=settings.server_user, group=settings.group, mode="2775")

    files.directory(name="Create the database dump directory", path=settings.server_db_dump_dir,
                    user=settings.server_user, group=settings.server_user, mode="700")
    stop_and_dump_before_upgrade(
        name="Before an upgrade: stop OMERO.server and dump the database",
        symlink=settings.server_symlink, version=settings.server_version,
        stop=services.stop_command(settings, "omero-server"), user=settings.server_user,
        dump_dir=settings.server_db_dump_dir, db=_db(settings),
    )
    zip_path = fetch(settings, settings.server_artifact, f"{settings.server_basedir}/downloads")
    unpacked = run_once(
        name=f"Unpack OMERO.server {settings.server_version}",
        command=(f"cd {settings.server_basedir} && unzip -q {shlex.quote(zip_path)} && "
                 f"chown -R root:root {settings.server_dir}"),
        creates=settings.server_dir,
    )
    # The server writes only below var/ (logs, master, certificates).
    files.directory(name="Give the server its var directory", path=f"{settings.server_dir}/var",
                    user=settings.server_user, group=settings.group, mode="755")
    link = files.link(name="Point OMERO.server at this version", path=settings.server_symlink,
                      target=settings.server_dir, user="root", group="root")
    return [unpacked, link, *venv_changes]


def configure(settings) -> list:
    user = settings.server_user
    home = f"/var/lib/{user}"
    db = _db(settings)
    # psql and pg_dump as the server user read the password from here, never a command line.
    files.put(
        name="Give the server user its database password file",
        src=StringIO(f"{db['host']}:{db['port']}:{db['name']}:{db['user']}:{settings.db_password}\n"),
        dest=f"{home}/.pgpass", user=user, group=user, mode="600",
    )
    config_dir = f"{settings.server_basedir}/config"
    files.directory(name="Create the OMERO.server config directory", path=config_dir,
                    user="root", group=user, mode="750")
    config = services.template(settings, "omero/server.omero.j2", f"{config_dir}/00-omero-server.omero",
                               user="root", group=user, mode="640")
    loaded = shell_when(
        name="Load the OMERO.server configuration",
        commands=[f"{_omero(settings)} load --glob '{config_dir}/*.omero'"],
        when=changed(config), **as_user(settings.server_user),
    )
    run_once(name="Create the server's certificates (omero-certificates)",
             command=f"{_omero(settings)} certificates",
             creates=f"{settings.server_dir}/var/certs/server.p12", **as_user(settings.server_user))
    omero_schema_upgrade(name="Upgrade the OMERO schema if this version needs it",
                         omerodir=settings.server_symlink, db=db, **as_user(settings.server_user))
    omero_schema(name="Create the OMERO schema (only on an empty database)",
                 omero=f"{settings.server_basedir}/venv3/bin/omero", omerodir=settings.server_symlink,
                 db=db, script_dir=home, root_password=settings.root_password,
                 **as_user(settings.server_user))
    return [config, loaded]


def start(settings, changes: list) -> None:
    venv = f"{settings.server_basedir}/venv3"
    config_dir = f"{settings.server_basedir}/config"
    environment = {
        "OMERODIR": settings.server_symlink,
        "PATH": f"{venv}/bin:{settings.ice_home}/bin:/usr/local/bin:/usr/bin:/bin",
    }
    program = services.program(
        settings, "omero-server",
        command=(f"/bin/sh -c '{venv}/bin/omero load --glob \"{config_dir}/*.omero\" && "
                 f"exec {venv}/bin/omero admin start --foreground'"),
        user=settings.server_user, environment=environment, directory=settings.server_symlink,
        unit_template="systemd/omero-server.service.j2",
        writable=(f"{settings.server_dir}/var", f"{settings.server_dir}/etc/grid", settings.data_dir,
                  f"/var/lib/{settings.server_user}"),
    )
    started = services.start(settings, "omero-server", restart_when=[program, *changes])
    wait_until(name="Wait until OMERO.server accepts connections",
               check=f"{_omero(settings)} admin waitup --wait 1 >/dev/null 2>&1",
               what="OMERO.server", timeout=300, when=changed(started),
               **as_user(settings.server_user))


def deploy(settings) -> None:
    changes = install(settings)
    changes += configure(settings)
    start(settings, changes)


"""OMERO.server: the site's zip unpacked to a versioned directory behind the ``OMERO.server``
symlink, configured from files, schema created once, upgraded in place on a version change."""

import shlex
from pathlib import PurePosixPath

from pyinfra.operations import files

from facts.omero import shell_path

from . import kit, readonly, readonly_hosts, server_steps, services
from .database_operations import omero_schema, omero_schema_upgrade, stop_and_dump_before_upgrade
from .operations import changed, closed_to_others, complete_directory, refreshed, secret_file, wait_until
from .prerequisites import install_ice, omero_venv, site_packages
from .users import as_user, omero_user
from .webapps import APPS

# Group-writable (in-place import: the shared group links files into what the server makes in
# ManagedRepository), nothing for others.
SERVER_UMASK = "0007"


def _omero(settings) -> str:
    return f"OMERODIR={shlex.quote(settings.server_symlink)} {shlex.quote(settings.server_omero)}"


def _db(settings) -> dict:
    return {"host": settings.database_address, "port": settings.db_port,
            "name": settings.db_name, "user": settings.db_user}


def install(settings) -> list[str]:
    """Ice, the venv and the server itself (Java and the rest are among the packages);
    returns what a restart applies."""
    install_ice(settings)
    omero_user(settings, settings.server_user, shared_group=True)
    kit.directory(name="Create the OMERO.server base directory", path=settings.server_basedir,
                  user="root", group="root", mode="755")
    script_apps = [app for app in settings.web_apps if app.server_script]
    # OMERO 5.6's grid descriptor starts DropBox and MonitorServer with the server; they
    # run once omero-dropbox is in the venv of omero-py (OME's sysadmin docs, "OMERO.dropbox"),
    # i.e. after the restart a change of this venv brings.
    dropbox = [f"omero-dropbox=={settings.dropbox_version}"] if settings.server_dropbox else []
    omero_venv(settings, settings.server_venv, [
        f"omero-py=={settings.py_version}",
        *(package for app in settings.web_apps for package in app.server_packages),
        # The app itself only for the script it ships.
        *(f"{app.package}=={app.version}" for app in script_apps),
        *dropbox,
    ])
    if not settings.server_dropbox:
        kit.pip_packages(name="Uninstall omero-dropbox (omero_server_dropbox is off)",
                         packages=["omero-dropbox"], present=False, virtualenv=settings.server_venv)
    if not settings.server_readonly:
        data_directories(settings)
    # pyinfra runs operations in the order of the code, across hosts: the repository is
    # exported before the read-only servers mount it.
    if settings.readonly_clients:
        readonly_hosts.export(settings)
    elif not settings.server_readonly:
        readonly_hosts.not_exported(name="Remove the NFS export of an earlier read-only cluster",
                                    exports=readonly_hosts.EXPORTS)
    if settings.server_readonly:
        # The read-write server's repository; the database is dumped there before an upgrade.
        readonly_hosts.mount(settings)
    else:
        kit.directory(name="Create the database dump directory", path=settings.server_db_dump_dir,
                      user=settings.server_user, group=settings.server_user, mode="700")
        stop_and_dump_before_upgrade(
            name="Before an upgrade: stop OMERO.server and dump the database",
            symlink=settings.server_symlink, version=settings.server_version,
            stop=services.action_command(settings, "stop", "omero-server"), user=settings.server_user,
            dump_dir=settings.server_db_dump_dir, db=_db(settings),
            backup_program=settings.backup_program if settings.backs_up else None,
        )
    zip_path = kit.fetch(settings, settings.server_artifact, settings.server_download_dir)
    # The zip holds one directory, named as ours; root's whatever owners the zip records.
    complete_directory(
        name=f"Unpack OMERO.server {settings.server_version}", target=settings.server_dir,
        fill=lambda scratch: ["unzip", "-q", zip_path, "-d", scratch],
        inside=PurePosixPath(settings.server_dir).name, owner="root:root",
    )
    # The server writes below var/ (logs, the IceGrid registry) and, at every start, rewrites
    # files in etc/ and etc/grid/ (`omero admin rewrite`: *.cfg, ice.config, templates.xml,
    # config.xml through a temporary file and a lock beside it); nothing else is its own.
    # config.xml holds the database and certificate store passwords: etc/grid/ is the server
    # user's alone, whatever mode a start gives the file. etc/ is open to the shared group
    # (in-place import runs the server's CLI, which reads etc/); var/ to no one else.
    for writable, group, mode in server_writable_dirs(settings):
        kit.directory(name=f"Give the server its {writable.removeprefix(settings.server_dir + '/')} directory",
                      path=writable, user=settings.server_user, group=group, mode=mode)
    files.link(name="Point OMERO.server at this version", path=settings.server_symlink,
               target=settings.server_dir, user="root", group="root")
    return [settings.server_symlink, site_packages(settings.server_venv), *_app_scripts(settings)]


def server_writable_dirs(settings) -> tuple[tuple[str, str, str], ...]:
    """The directories of the unpacked server that the server itself writes: (path, group, mode)."""
    return tuple((f"{settings.server_dir}/{sub}", group, mode) for sub, group, mode in (
        ("var", settings.server_user, "750"), ("etc", settings.group, "750"),
        ("etc/grid", settings.server_user, "700")))


def data_directories(settings) -> None:
    """The binary repository, every group's raw files: closed to accounts outside the shared
    group, but for DropBox's folders (the server user and the shared group exist)."""
    # Others may pass through (to their DropBox folder) but not list; what the server makes
    # in it (UMask 0007) gets the shared group and nothing for others.
    kit.directory(name="Create the OMERO data directory", path=settings.data_dir,
                  user=settings.server_user, group=settings.group, mode="2751")
    # In-place import: the repository group-writable, new files inheriting the group.
    kit.directory(name="Create the managed repository", path=f"{settings.data_dir}/ManagedRepository",
                  user=settings.server_user, group=settings.group, mode="2770")
    dropbox = [PurePosixPath(settings.dropbox_dir).name] if settings.server_dropbox else []
    # Pixels/, Files/, ... made under an earlier deploy's umask (0002) are open to everyone.
    closed_to_others(name="Close the data directory's contents to other accounts", directory=settings.data_dir,
                     keep=dropbox)
    if settings.server_dropbox:
        # DropBox imports a file as the OMERO user its first folder is named after, so only
        # the sysadmin makes those folders (README). setgid: a folder made in it, and every
        # file in that, gets the shared group, through which the server reads them. Others
        # pass through to their own folder, and do not see the others'.
        # Unset omero.fs.watchDir means <omero.data.dir>/DropBox (omero-dropbox's fsDropBox).
        kit.directory(name="Create the DropBox directory", path=settings.dropbox_dir,
                      user=settings.server_user, group=settings.group, mode="2751")


def _app_scripts(settings) -> list[str]:
    """The scripts web apps run on the server (OMERO.figure's PDF export) among the server's
    official scripts, registered when it starts; returns their paths."""
    installed = []
    listed = {app.package for app in settings.web_apps}
    for app in APPS.values():
        if not app.server_script:
            continue
        script = f"{settings.server_dir}/lib/scripts/{app.server_script}"
        if app.package not in listed:
            kit.file(name=f"Remove {app.package}'s server script", path=script, present=False)
            continue
        kit.directory(name=f"Create the directory of {app.package}'s server script",
                      path=script.rsplit("/", 1)[0], user="root", group="root", mode="755")
        # Shipped inside the app's package, installed in the server venv for it.
        shipped = f"{site_packages(settings.server_venv)}/{app.module}/scripts/{app.server_script}"
        refreshed(name=f"Install {app.package}'s server script",
                  commands=[f"install -o root -g root -m 644 {shell_path(shipped)} {shlex.quote(script)}"],
                  sources=[site_packages(settings.server_venv), settings.server_symlink],
                  stamp=settings.stamp(f"{app.package}-server-script"))
        installed.append(script)
    return installed


def configure(settings) -> list[str]:
    """Write and load the configuration, certificates, the schema; returns what a restart
    applies."""
    user = settings.server_user
    db = _db(settings)
    if not settings.server_readonly:
        # psql and pg_dump as the server user read the password from here, never a command line.
        secret_file(
            name="Give the server user its database password file",
            content=(f"{db['host']}:{db['port']}:{db['name']}:{db['user']}:"
                     f"{_pgpass_escaped(settings.db_password)}\n"),
            dest=f"{settings.server_home}/.pgpass", user=user, group=user, mode="600",
        )
    config_dir = settings.server_config_dir
    kit.directory(name="Create the OMERO.server config directory", path=config_dir,
                  user="root", group=user, mode="750")
    config_file = f"{config_dir}/00-omero-server.omero"
    # It holds the database password.
    secret_file(name=f"Write {config_file}", dest=config_file, content=_config(settings, db),
                user="root", group=user, mode="640")
    refreshed(name="Load the OMERO.server configuration",
              commands=[_load_config(settings)],
              sources=[config_file, settings.server_symlink],
              stamp=settings.stamp("omero-server-config-loaded"), user=user)
    certificates(settings)
    if settings.server_readonly:
        # The schema is the read-write server's to create and upgrade.
        return [config_file, f"{settings.server_certs_dir}/{server_steps.STORE}"]
    omero_schema_upgrade(name="Upgrade the OMERO schema if this version needs it",
                         omerodir=settings.server_symlink, db=db, **as_user(user))
    omero_schema(name="Create the OMERO schema (only on an empty database)",
                 omero=settings.server_omero, omerodir=settings.server_symlink,
                 db=db, script_dir=settings.server_home, root_password=settings.root_password,
                 **as_user(user))
    return [config_file, f"{settings.server_certs_dir}/{server_steps.STORE}"]


def _config(settings, db: dict) -> str:
    cluster = (readonly.config(settings.server_memo_dir) if settings.server_readonly
               else readonly.ADMIN_LOCAL if settings.readonly_clients else ())
    return ("# Managed by omero-pyinfra; loaded by `omero load` before every start: these files are the whole "
            "configuration.\n" + server_steps.server_config(
                {**db, "password": settings.db_password}, settings.data_dir, settings.server_certs_dir,
                settings.certificate_password, tuple(settings.server_config.items()))
            # Last, so that no omero_server_config value undoes them.
            + readonly.config_lines(cluster))


def certificates(settings) -> None:
    """Glacier2's TLS certificate (server_steps), its store's password the site's own
    (omero-certificates' is "secret"). Made again when the password changes or the store
    is missing."""
    user, certs = settings.server_user, settings.server_certs_dir
    password_file = settings.server_certificate_password_file
    secret_file(name="Give the server its certificate store's password", content=settings.certificate_password + "\n",
                dest=password_file, user=user, group=user, mode="600")
    kit.directory(name="Create the server's certificate directory", path=certs,
                  user=user, group=user, mode="700")
    refreshed(
        name="Create the server's TLS certificate and its PKCS#12 store",
        commands=[server_steps.certificate_command(certs, password_file)],
        # The store is the stamp: missing, or older than its password, it is made.
        sources=[password_file], stamp=f"{certs}/{server_steps.STORE}", touch=False, user=user,
    )


def start(settings, restart_sources: list[str]) -> None:
    venv = settings.server_venv
    config_glob = f"{settings.server_config_dir}/*.omero"
    environment = {
        # supervisord keeps its own HOME for its programs; the CLI keeps its files there.
        "HOME": settings.server_home,
        "OMERODIR": settings.server_symlink,
        "PATH": f"{venv}/bin:{settings.ice_home}/bin:/usr/local/bin:/usr/bin:/bin",
    }
    services.program(
        settings, "omero-server",
        # Paths are validated to hold no quotes or spaces (settings), so the glob can be
        # quoted simply in a line that both systemd and supervisord parse.
        command=(f"/bin/sh -c \"(umask 077 && {settings.server_omero} load --glob '{config_glob}' "
                 f"&& chmod 600 {settings.server_symlink}/etc/grid/config.xml) "
                 f"&& exec {settings.server_omero} admin start --foreground\""),
        user=settings.server_user, environment=environment, directory=settings.server_symlink,
        unit_template="systemd/omero-server.service.j2", umask=SERVER_UMASK,
        # etc/ holds etc/grid/; a read-only server writes no repository (its memo files: home).
        writable=(f"{settings.server_dir}/var", f"{settings.server_dir}/etc",
                  *(() if settings.server_readonly else (settings.data_dir,)), settings.server_home),
        unit_values={"roles": settings.roles, "postgres_unit": settings.platform.postgres_unit,
                     "server_basedir": settings.server_basedir,
                     "repository_mount": settings.data_dir if settings.server_readonly else None},
    )
    started = services.start(settings, "omero-server", restart_sources=restart_sources)
    wait_until(name="Wait until OMERO.server accepts connections",
               check=f"{_omero(settings)} admin waitup --wait 1 >/dev/null 2>&1",
               what="OMERO.server", timeout=300, when=changed(started),
               **as_user(settings.server_user))


def _load_config(settings) -> str:
    """Load the config files into the server's config.xml, which then holds the database
    password: made and kept readable by the server user only."""
    config_xml = shlex.quote(f"{settings.server_symlink}/etc/grid/config.xml")
    return (f"(umask 077 && {_omero(settings)} load --glob "
            f"{shlex.quote(settings.server_config_dir + '/*.omero')} && chmod 600 {config_xml})")


def _pgpass_escaped(password: str) -> str:
    # .pgpass separates fields with ':' and escapes with '\'.
    return password.replace("\\", "\\\\").replace(":", "\\:")


def deploy(settings) -> None:
    restart_sources = install(settings)
    restart_sources += configure(settings)
    start(settings, restart_sources)

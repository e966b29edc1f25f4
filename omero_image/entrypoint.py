#!/usr/bin/python3
"""omero-image: start OMERO in the image (the image's entrypoint, run as root or as any user).

Everything that changes lives on the state volume /var/lib/omero; the image itself may be
read-only. A first start on an empty volume makes the PostgreSQL cluster, the OMERO role
(password from $OMERO_DB_PASSWORD, the file named by $OMERO_DB_PASSWORD_FILE, else
generated into secrets/db-password) and its database, and OMERO.web's secret key; in an
image with OMERO.server also the binary repository (data/), the server's TLS certificate
and the OMERO schema, whose root password comes from $OMERO_ROOT_PASSWORD(_FILE) or is
generated into secrets/root-password. Every start then writes the runtime configuration
(OMERO.web's and OMERO.server's from the image's files, the *.omero files in config/ and
CONFIG_omero_* variables; supervisord's and nginx's around the deploy's programs and site,
which read the ports, users and paths of this start: omero_container) and hands over to
supervisord.

Run as root, each service runs as its own user; run as another user (Apptainer, podman
--user), everything runs as that user.
"""

import errno
import fcntl
import json
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import unicodedata

LIB = os.path.dirname(os.path.realpath(__file__))
sys.path.insert(0, LIB)
import omero_container as container  # noqa: E402 - shipped beside this script
from omero_passwords import refusal  # noqa: E402 - shipped beside this script
from omero_scram import scram_verifier  # noqa: E402 - shipped beside this script
from omero_server_steps import (  # noqa: E402 - shipped beside this script
    SCHEMA_SCRIPT,
    STORE,
    certificate_command,
    config_line,
    schema_script,
    server_config,
)

with open(os.path.join(LIB, "image.json"), encoding="utf-8") as _manifest:
    IMAGE = json.load(_manifest)

STATE = IMAGE["state"]  # omero_container.STATE, or a test's
RUN = f"{STATE}/run"  # made anew at every start
LOCK = f"{STATE}/omero-image.lock"  # held by the container using the state, for its whole life
HOME = f"{STATE}/home"  # the watch's home (the services' are the image's, pointing at the state)
LOG = f"{STATE}/log"
PGDATA = f"{STATE}/postgresql"
WEB = f"{STATE}/web"
CONFIG = f"{STATE}/config"
SECRETS = f"{STATE}/secrets"
AS_ROOT = os.geteuid() == 0


class Refused(Exception):
    """A start that cannot go on; the message says why and what to do."""


def say(message: str) -> None:
    print(f"omero-image: {message}", file=sys.stderr, flush=True)


def port(name: str, default: int) -> int:
    value = os.environ.get(name, str(default))
    if not re.fullmatch(r"[0-9]{1,5}", value) or not 0 < int(value) < 65536:
        raise Refused(f"{name}={value!r} is not a TCP port number")
    if int(value) < 1024 and not AS_ROOT:
        raise Refused(f"{name}={value}: a user other than root cannot listen below 1024; use e.g. 8080")
    return int(value)


def ids(user: str) -> tuple[int, int]:
    """Who owns ``user``'s files: that user under root, else whoever runs the image."""
    if not AS_ROOT:
        return os.geteuid(), os.getegid()
    entry = pwd.getpwnam(user)
    return entry.pw_uid, entry.pw_gid


def directory(path: str, user: str, mode: int) -> str:
    """``path`` owned by ``user`` with ``mode``; a tree left by another image's uids is handed over."""
    os.makedirs(path, exist_ok=True)
    uid, gid = ids(user)
    if AS_ROOT and (os.stat(path).st_uid, os.stat(path).st_gid) != (uid, gid):
        subprocess.run(["chown", "-R", f"{uid}:{gid}", path], check=True)
    os.chmod(path, mode)
    return path


def write(path: str, content: str, user: str = "root", mode: int = 0o644) -> str:
    """``content`` into ``path``, made with ``mode`` before anything is written to it."""
    if os.path.lexists(path):
        os.unlink(path)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(content)
    uid, gid = ids(user)
    if AS_ROOT:
        os.chown(path, uid, gid)
    return path


def as_user(user: str, command: list[str], **kwargs) -> subprocess.CompletedProcess:
    prefix = ["runuser", "-u", user, "--"] if AS_ROOT else []
    return subprocess.run(prefix + command, capture_output=True, text=True, **kwargs)


def checked(result: subprocess.CompletedProcess, what: str) -> subprocess.CompletedProcess:
    if result.returncode != 0:
        raise Refused(f"{what} failed:\n{result.stdout[-2000:]}{result.stderr[-2000:]}")
    return result


# -- the state's lock ---------------------------------------------------------------------
# What a file system without working locks answers (NFS without lockd, Lustre without -o flock).
NO_LOCKS = (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS)
LOCK_MODES = ("required", "if-supported")


def hold_state(mode: str) -> int | None:
    """The state's lock, taken before anything on it changes and held until the container
    ends (by this process, then by supervisord, which inherits it). Each container has its
    own process ids, so PostgreSQL's postmaster.pid does not see a second one on the same
    data files: this lock must. None when the file system has no locks and ``mode`` allows it."""
    if mode not in LOCK_MODES:
        raise Refused(f"OMERO_STATE_LOCK={mode!r} is not one of {', '.join(LOCK_MODES)}")
    try:
        descriptor = os.open(LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as error:
        raise Refused(f"cannot open the state's lock {LOCK}: {error.strerror}") from None
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        with open(descriptor, encoding="utf-8", errors="replace") as held:
            holder = held.read().strip() or "unknown"
        raise Refused(f"the state {STATE} is in use by another container ({holder}; it holds {LOCK}). "
                      "Two on one state would run two PostgreSQL servers on the same data files and "
                      "corrupt the database: stop the other one first, or give this one another state") from None
    except OSError as error:
        os.close(descriptor)
        if error.errno not in NO_LOCKS:
            raise Refused(f"cannot lock the state ({LOCK}): {error.strerror}") from None
        unguarded = (f"the file system of {STATE} cannot lock {LOCK} ({error.strerror}), so nothing "
                     "stops a second container (on this node or another) from starting on this state "
                     "and corrupting the database")
        if mode == "required":
            raise Refused(f"{unguarded}. Put the state on a file system with locks (a local disk; NFS "
                          "with lockd; Lustre mounted with -o flock), or set OMERO_STATE_LOCK=if-supported "
                          "and never start a second container on it") from None
        say(f"WARNING: {unguarded} (OMERO_STATE_LOCK=if-supported)")
        return None
    os.ftruncate(descriptor, 0)
    os.write(descriptor, f"{holder_of_lock()}\n".encode())
    return descriptor


def holder_of_lock() -> str:
    """Who holds the lock, for the message of a container refused: the host (podman's
    container id, Apptainer's node), the process and since when."""
    return f"host {socket.gethostname()}, pid {os.getpid()}, since {time.strftime('%Y-%m-%d %H:%M:%S %Z')}"


# -- PostgreSQL ---------------------------------------------------------------------------
SECRET_VARIABLES = ("OMERO_DB_PASSWORD", "OMERO_ROOT_PASSWORD")


def given_password(variable: str = "OMERO_DB_PASSWORD") -> str | None:
    """The password handed to this start in ``variable``, else in the file ``variable``_FILE
    names, if any."""
    password = os.environ.get(variable)
    if not password and os.environ.get(f"{variable}_FILE"):
        with open(os.environ[f"{variable}_FILE"], encoding="utf-8") as handle:
            password = handle.read().strip()
    refused = password and refusal(password)
    if refused:
        raise Refused(f"the password of {variable} {refused}")
    return password or None


def generated(name: str) -> str:
    """A password made on the first start, kept in secrets/``name`` (root's, 0600)."""
    directory(SECRETS, "root", 0o700)
    password = secrets.token_urlsafe(24)
    write(f"{SECRETS}/{name}", password + "\n", mode=0o600)
    say(f"generated a password into {SECRETS}/{name}")
    return password


def kept(name: str) -> str | None:
    path = f"{SECRETS}/{name}"
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as handle:
        return handle.read().strip()


def single_user(statements: list[str]) -> None:
    """SQL run by PostgreSQL in single-user mode: no server, no connection, no password."""
    result = as_user("postgres", [f"{IMAGE['postgres_bin_dir']}/postgres", "--single", "-D", PGDATA,
                                  "postgres"],
                     input="\n".join(statements) + "\n")
    output = result.stdout + result.stderr
    if result.returncode != 0 or "ERROR:" in output or "FATAL:" in output:
        # The statements hold a verifier, never a password; still, show PostgreSQL's words only.
        raise Refused("PostgreSQL (single-user mode) refused: "
                      + "; ".join(line for line in output.splitlines() if "ERROR" in line or "FATAL" in line))


def database() -> str | None:
    """The cluster, the role and its database made or checked; returns the role's password
    when this start knows it (given, or generated by a first start)."""
    directory(PGDATA, "postgres", 0o700)
    role, name = IMAGE["db_user"], IMAGE["db_name"]
    password = given_password()
    if not os.path.exists(f"{PGDATA}/PG_VERSION"):
        if os.listdir(PGDATA):
            raise Refused(f"{PGDATA} holds files but no PostgreSQL cluster; empty it or mount another volume")
        if password is None:
            password = generated("db-password")
        say("first start: creating the PostgreSQL cluster")
        checked(as_user("postgres", [f"{IMAGE['postgres_bin_dir']}/initdb", "-D", PGDATA, "-U", "postgres",
                                     "-E", "UTF8", "--locale=C.UTF-8", "--auth-local=peer",
                                     "--auth-host=scram-sha-256"]), "initdb")
        single_user([f'CREATE ROLE "{role}" LOGIN PASSWORD \'{scram_verifier(password)}\';',
                     f'CREATE DATABASE "{name}" OWNER "{role}" ENCODING \'UTF8\' TEMPLATE template0;'])
        return password
    with open(f"{PGDATA}/PG_VERSION", encoding="ascii") as handle:
        version = handle.read().strip()
    if version != str(IMAGE["postgres_version"]):
        raise Refused(f"the cluster on the volume is PostgreSQL {version}, this image runs "
                      f"{IMAGE['postgres_version']}: dump it with the old image and restore it into this one")
    if password is not None:
        single_user([f'ALTER ROLE "{role}" PASSWORD \'{scram_verifier(password)}\';'])
    return password or kept("db-password")


# -- OMERO.web ----------------------------------------------------------------------------
def config_variable(variable: str, value: str) -> str:
    """The `omero load` line of one CONFIG_omero_* variable (``_`` -> ``.``, ``__`` -> ``_``:
    CONFIG_omero_web_server__list sets omero.web.server_list); refuses what cannot be one."""
    key = variable.removeprefix("CONFIG_").replace("__", "\0").replace("_", ".").replace("\0", "_")
    if not re.fullmatch(r"omero(\.[A-Za-z0-9_]+)+", key):
        raise Refused(f"{variable}: not a setting's name (CONFIG_omero_web_public__enabled sets "
                      "omero.web.public_enabled)")
    control = sorted({character for character in value if unicodedata.category(character) == "Cc"} - {"\t"})
    if control:
        raise Refused(f"{variable}: its value holds {', '.join(map(repr, control))}: a setting's value is one "
                      "line (JSON lists and objects included)")
    return config_line(key, value)


def site_config(environ=os.environ) -> list[tuple[str, str]]:
    """The site's overrides, each with where it comes from: config/*.omero, then
    CONFIG_omero_* variables (the later wins)."""
    parts = []
    if os.path.isdir(CONFIG):
        for name in sorted(os.listdir(CONFIG)):
            if name.endswith(".omero"):
                path = os.path.join(CONFIG, name)
                try:
                    with open(path, encoding="utf-8") as handle:
                        parts.append((path, handle.read() + "\n"))
                except (OSError, UnicodeDecodeError) as error:
                    raise Refused(f"{path}: cannot be read as UTF-8 text: {error}") from None
    parts += [(variable, config_variable(variable, value)) for variable, value in sorted(environ.items())
              if variable.startswith("CONFIG_omero")]
    return parts


def config_lines(parts: list[tuple[str, str]]) -> str:
    return "".join(f"# {source}\n{text}" for source, text in parts)


def last_line(result: subprocess.CompletedProcess) -> str:
    """What a failed command said last: the error, without the traceback above it."""
    lines = [line.strip() for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    # The line naming the error, not e.g. the end of a usage message's list of commands.
    errors = [line for line in lines if re.search(r"error|invalid|unknown|denied", line, re.IGNORECASE)]
    return (errors or lines)[-1][:500] if lines else f"exit status {result.returncode}"


def web_env(omerodir: str) -> list[str]:
    home = f"{WEB}/home"
    return ["env", f"HOME={home}", f"OMERODIR={omerodir}", f"OMERO_USERDIR={home}"]


def refused_source(user: str, parts: list[tuple[str, str]]) -> str:
    """Which override `omero load` refuses, each tried alone in a scratch OMERODIR."""
    scratch = directory(f"{RUN}/config-check", user, 0o700)
    directory(f"{scratch}/etc", user, 0o700)
    directory(f"{scratch}/etc/grid", user, 0o700)
    try:
        for source, text in parts:
            lines = write(f"{scratch}/site.omero", text, user, 0o600)
            result = as_user(user, web_env(scratch) + [IMAGE["web_omero"], "load", lines])
            if result.returncode != 0:
                return f"{source} is not OMERO configuration `omero load` takes: {last_line(result)}"
        return ""
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def setting_source(message: str, parts: list[tuple[str, str]]) -> str:
    """The override that sets the key OMERO.web names in ``message``: the last one wins."""
    keys = re.findall(r"omero(?:\.[A-Za-z0-9_]+)+", message)
    for source, text in reversed(parts):
        if any(re.search(rf"(?m)^\s*config\s+set\s+(--\s+)?'?{re.escape(key)}'?\s", text) for key in keys):
            return source
    return ""


def web(parts: list[tuple[str, str]]) -> None:
    """OMERO.web's configuration: the image's, then the site's, loaded and then read as
    OMERO.web reads it at start (its settings and apps), so a value it refuses stops the
    start here, named, instead of gunicorn failing over and over."""
    user = IMAGE["web_user"]
    directory(WEB, user, 0o750)
    for sub in ("log", "grid", "home"):
        directory(f"{WEB}/{sub}", user, 0o750)
    key = f"{WEB}/django_secret_key"
    if not os.path.exists(key):
        write(key, secrets.token_urlsafe(48), user, 0o600)
    overrides = write(f"{RUN}/omero-web-overrides.omero", config_lines(parts), user, 0o600)
    image_files = sorted(f"{IMAGE['web_config_dir']}/{name}" for name in os.listdir(IMAGE["web_config_dir"])
                         if name.endswith(".omero"))
    # config.xml (in grid/, on the volume) is made anew: the image's files hold the whole truth
    # (they start with `config drop default`), the site's overrides come last.
    loaded = as_user(user, web_env(IMAGE["web_omerodir"]) + [IMAGE["web_omero"], "load", *image_files, overrides])
    if loaded.returncode != 0:
        raise Refused(refused_source(user, parts)
                      or f"loading OMERO.web's configuration failed: {last_line(loaded)}")
    python = os.path.join(os.path.dirname(IMAGE["web_omero"]), "python")
    read = as_user(user, web_env(IMAGE["web_omerodir"]) + [
        "DJANGO_SETTINGS_MODULE=omeroweb.settings", python, "-c", "import django; django.setup()"],
        cwd=IMAGE["web_omerodir"])
    if read.returncode != 0:
        reason = last_line(read)
        source = setting_source(reason, parts)
        raise Refused(f"OMERO.web refuses its configuration{f' ({source})' if source else ''}: {reason}")


# -- OMERO.server (in an image built with it) -------------------------------------------
SERVER = f"{STATE}/server"  # var/, etc/ (the image's, copied at each start) and the user's home
DATA = f"{STATE}/data"  # omero.data.dir: the binary repository
SERVER_CONFIG = f"{RUN}/server-config"  # loaded before every start: the whole configuration


def server_env() -> list[str]:
    home = f"{SERVER}/home"
    return ["env", f"HOME={home}", f"OMERODIR={IMAGE['server_omerodir']}", f"OMERO_USERDIR={home}/omero"]


def server(db_port: int, db_password: str | None, parts: list[tuple[str, str]]) -> None:
    """The server's trees on the volume, its certificate, its configuration for this start."""
    user = IMAGE["server_user"]
    if db_password is None:
        raise Refused("OMERO.server needs the database password at every start, and this start has none: "
                      "give OMERO_DB_PASSWORD or OMERO_DB_PASSWORD_FILE (as at the first start)")
    directory(SERVER, user, 0o750)
    home = directory(f"{SERVER}/home", user, 0o700)
    directory(f"{SERVER}/var", user, 0o750)
    # The image's etc/, fresh: a newer image's templates win; the server rewrites parts of it.
    shutil.rmtree(f"{SERVER}/etc", ignore_errors=True)
    shutil.copytree(IMAGE["server_etc"], f"{SERVER}/etc", symlinks=True)
    if AS_ROOT:
        uid, gid = ids(user)
        subprocess.run(["chown", "-R", f"{uid}:{gid}", f"{SERVER}/etc"], check=True)
    directory(DATA, user, 0o755)
    directory(f"{DATA}/ManagedRepository", user, 0o2775)

    certs = directory(f"{home}/certs", user, 0o700)
    password_file = f"{home}/.certificate-password"
    if not os.path.exists(password_file):
        write(password_file, secrets.token_urlsafe(24) + "\n", user, 0o600)
    with open(password_file, encoding="utf-8") as handle:
        store_password = handle.read().strip()
    if not os.path.exists(f"{certs}/{STORE}"):
        checked(as_user(user, ["sh", "-c", certificate_command(certs, password_file)]),
                "making the server's TLS certificate")

    directory(SERVER_CONFIG, user, 0o700)
    db = {"host": "127.0.0.1", "port": db_port, "name": IMAGE["db_name"], "user": IMAGE["db_user"],
          "password": db_password}
    write(f"{SERVER_CONFIG}/00-image.omero", server_config(db, DATA, certs, store_password), user, 0o600)
    write(f"{SERVER_CONFIG}/50-site.omero", config_lines(parts), user, 0o600)


def schema(db_port: int) -> None:
    """The OMERO schema, made once on an empty database: PostgreSQL started alone, reachable
    only through a socket of its user's, then stopped again."""
    socket_dir = directory(f"{RUN}/schema-socket", "postgres", 0o700)
    hba = write(f"{socket_dir}/pg_hba.conf", "local all all trust\n", "postgres", 0o600)
    log = write(f"{LOG}/postgresql-schema.log", "", "postgres", 0o640)
    postgres = [f"{IMAGE['postgres_bin_dir']}/pg_ctl", "-D", PGDATA, "-w", "-l", log]
    options = (f"-c config_file={IMAGE['postgres_conf']} -c port={db_port} -c listen_addresses='' "
               f"-c unix_socket_directories={socket_dir} -c hba_file={hba} -c ssl=off "
               f"-c external_pid_file={socket_dir}/postmaster.pid")
    checked(as_user("postgres", postgres + ["-o", options, "start"]), "starting PostgreSQL for the schema")
    try:
        psql = [f"{IMAGE['postgres_bin_dir']}/psql", "-XAtq", "-v", "ON_ERROR_STOP=1", "-h", socket_dir,
                "-p", str(db_port), "-U", IMAGE["db_user"], "-d", IMAGE["db_name"]]
        found = checked(as_user("postgres", psql + ["-c", "SELECT to_regclass('public.dbpatch') IS NOT NULL"]),
                        "looking for the OMERO schema").stdout.strip()
        if found == "t":
            return
        # One kept from a first start stopped before the schema was made is used again.
        root_password = given_password("OMERO_ROOT_PASSWORD") or kept("root-password") or generated("root-password")
        script = f"{SERVER}/home/{SCHEMA_SCRIPT}"
        say("first start: creating the OMERO schema")
        # omero db script takes the root password on its command line (see README).
        checked(as_user(IMAGE["server_user"], server_env() + [
            "sh", "-c", 'umask 077 && exec "$@"', "-", *schema_script(IMAGE["server_omero"], script, root_password)]),
            "omero db script")
        try:
            # The script is the server user's alone; psql reads it from standard input.
            with open(script, encoding="utf-8") as sql:
                checked(as_user("postgres", psql + ["-f", "-"], stdin=sql), "applying the OMERO schema")
        finally:
            os.unlink(script)
    finally:
        checked(as_user("postgres", postgres + ["-m", "fast", "stop"]), "stopping PostgreSQL after the schema")


# -- supervisord and nginx ---------------------------------------------------------------
NGINX_CONF = """# Written by omero-image at start.
{user}worker_processes 2;
pid {run}/nginx.pid;
error_log stderr;
events {{
    worker_connections 1024;
}}
http {{
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log {log}/nginx-access.log;
    client_body_temp_path {run}/nginx/body;
    proxy_temp_path {run}/nginx/proxy;
    fastcgi_temp_path {run}/nginx/fastcgi;
    uwsgi_temp_path {run}/nginx/uwsgi;
    scgi_temp_path {run}/nginx/scgi;
    include {site};
}}
"""

SUPERVISORD_CONF = """; Written by omero-image at start.
[unix_http_server]
file={run}/supervisor.sock
chmod=0700

[supervisord]
nodaemon=true
{user}logfile={log}/supervisord.log
pidfile={run}/supervisord.pid
childlogdir={log}

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[supervisorctl]
serverurl=unix://{run}/supervisor.sock

[include]
files = {programs}/*.conf {watch}
"""

WATCH_CONF = """; Written by omero-image at start: stops the container when a program keeps failing.
[eventlistener:omero-image-watch]
command={python} {lib}/watch.py {run} {log}
events=PROCESS_STATE_EXITED,PROCESS_STATE_FATAL
priority=1
autorestart=true
environment=HOME="{home}"
stdout_logfile=NONE
stderr_logfile={log}/omero-image-watch.log
"""


def runtime(http_port: int, web_port: int, db_port: int) -> tuple[str, dict[str, str]]:
    """nginx's and supervisord's configuration for this start, around the image's site and
    programs (which read what differs from one container to the next: omero_container);
    returns supervisord's and what its programs read from its environment."""
    http_address = os.environ.get("OMERO_HTTP_ADDRESS", "")
    if http_address and not re.fullmatch(r"[0-9]{1,3}(\.[0-9]{1,3}){3}", http_address):
        raise Refused(f"OMERO_HTTP_ADDRESS={http_address!r} is not an IPv4 address")
    workers = os.environ.get(container.WEB_WORKERS, str(IMAGE["web_workers"]))
    if not re.fullmatch(r"[1-9][0-9]{0,2}", workers):
        raise Refused(f"{container.WEB_WORKERS}={workers!r} is not a number of workers")
    sockets = directory(f"{RUN}/postgresql", IMAGE["run_as"]["postgresql"], 0o2775)
    directory(f"{RUN}/nginx", IMAGE["nginx_user"], 0o700)
    listen = f"{http_address}:{http_port}" if http_address else str(http_port)
    for name, content in container.nginx_includes(listen, f"{IMAGE['web_bind_host']}:{web_port}").items():
        write(f"{RUN}/{name}", content)
    nginx_conf = write(f"{RUN}/nginx.conf", NGINX_CONF.format(
        user=f"user {IMAGE['nginx_user']};\n" if AS_ROOT else "", run=RUN, log=LOG, site=IMAGE["nginx_site"]))
    directory(HOME, "root", 0o755)
    watch = write(f"{RUN}/omero-image-watch.conf", WATCH_CONF.format(
        python=sys.executable, lib=LIB, run=RUN, log=LOG, home=directory(f"{HOME}/omero-image-watch", "root", 0o700)))
    homes = {"postgresql": f"{HOME}/postgresql", "nginx": f"{HOME}/nginx", "omero-web": f"{WEB}/home",
             "omero-server": f"{SERVER}/home"}
    environment = {container.DB_PORT: str(db_port), container.WEB_PORT: str(web_port), container.WEB_WORKERS: workers,
                   container.PG_SOCKETS: sockets, container.NGINX_CONF: nginx_conf}
    for program, user in IMAGE["run_as"].items():
        # One user runs everything unless root does: supervisord cannot switch users then.
        environment[container.run_as(program)] = user if AS_ROOT else str(os.geteuid())
        environment[container.home(program)] = directory(homes[program], user, 0o700)
    conf = write(f"{RUN}/supervisord.conf", SUPERVISORD_CONF.format(
        run=RUN, log=LOG, user="user=root\n" if AS_ROOT else "", programs=IMAGE["supervisor_programs"], watch=watch))
    return conf, environment


def supervise(conf: str, environment: dict, lock: int | None) -> int:
    """supervisord run under this process (PID 1 in a container), which forwards it the
    container's signals, reaps orphans, and exits non-zero when the watch stopped it: a
    program that kept failing, named on the container's output. supervisord inherits the
    state's lock, so the lock outlives this process as long as supervisord lives."""
    if lock is not None:
        os.set_inheritable(lock, True)
    child = {}

    def forward(signum, _frame):
        if "pid" in child:
            try:
                os.kill(child["pid"], signum)
            except ProcessLookupError:
                pass

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2):
        signal.signal(signum, forward)
    # Python ignores SIGPIPE and SIGXFSZ; the services must not inherit that.
    child["pid"] = os.posix_spawn("/usr/bin/supervisord", ["supervisord", "-n", "-c", conf], environment,
                                  setsigdef=(signal.SIGPIPE, signal.SIGXFSZ))
    while True:
        pid, status = os.waitpid(-1, 0)
        if pid == child["pid"]:
            break
    code = os.waitstatus_to_exitcode(status)
    if os.path.exists(f"{RUN}/failed"):
        with open(f"{RUN}/failed", encoding="utf-8", errors="replace") as failed:
            say(failed.read().rstrip())
        return 1
    return code if code >= 0 else 128 - code


def main() -> int:
    if not os.access(STATE, os.W_OK):
        raise Refused(f"{STATE} is not writable: mount a volume (or a directory of yours) there")
    lock = hold_state(os.environ.get("OMERO_STATE_LOCK", "required"))  # before anything changes
    http_port = port("OMERO_HTTP_PORT", IMAGE["http_port"])
    web_port = port(container.WEB_PORT, IMAGE["web_port"])
    db_port = port(container.DB_PORT, IMAGE["db_port"])
    if len({http_port, web_port, db_port}) < 3:
        raise Refused("OMERO_HTTP_PORT, OMERO_WEB_PORT and OMERO_DB_PORT must differ")
    parts = site_config()
    shutil.rmtree(RUN, ignore_errors=True)  # sockets and pids of an earlier start
    directory(RUN, "root", 0o755)
    directory(LOG, "root", 0o755)
    os.makedirs(CONFIG, mode=0o755, exist_ok=True)  # yours: maybe a read-only mount, never chowned
    web(parts)  # the configuration, checked before any service starts
    db_password = database()
    if IMAGE["server"]:
        server(db_port, db_password, parts)
        schema(db_port)
    conf, environment = runtime(http_port, web_port, db_port)
    say(f"starting supervisord (nginx on port {http_port})")
    return supervise(conf, {**service_environment(os.environ), **environment}, lock)


def service_environment(environ) -> dict:
    """What the services inherit: not the passwords nor the configuration handed to this start
    (written where each belongs by now), which every process of a service's user could read."""
    return {name: value for name, value in environ.items()
            if name.removesuffix("_FILE") not in SECRET_VARIABLES and not name.startswith("CONFIG_")}


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Refused as refused:
        say(str(refused))
        sys.exit(1)

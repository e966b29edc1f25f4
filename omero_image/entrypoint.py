#!/usr/bin/python3
"""omero-image: start OMERO in the image (the image's entrypoint, run as root or as any user).

Everything that changes lives on the state volume /var/lib/omero; the image itself may be
read-only. A first start on an empty volume makes the PostgreSQL cluster, the OMERO role
(password from $OMERO_DB_PASSWORD, the file named by $OMERO_DB_PASSWORD_FILE, else
generated into secrets/db-password) and its database, and OMERO.web's secret key. Every
start then writes the runtime configuration (supervisord, nginx, OMERO.web's config.xml)
from the image's files, the *.omero files in config/ and CONFIG_omero_* variables, with
the ports the environment asks for, and hands over to supervisord.

Run as root, each service runs as its own user; run as another user (Apptainer, podman
--user), everything runs as that user.
"""

import json
import os
import pwd
import re
import secrets
import shlex
import shutil
import subprocess
import sys

LIB = os.path.dirname(os.path.realpath(__file__))
sys.path.insert(0, LIB)
from omero_scram import scram_verifier  # noqa: E402 - shipped beside this script

with open(os.path.join(LIB, "image.json"), encoding="utf-8") as _manifest:
    IMAGE = json.load(_manifest)

STATE = IMAGE["state"]
RUN = f"{STATE}/run"  # made anew at every start
LOG = f"{STATE}/log"
PGDATA = f"{STATE}/postgresql"
WEB = f"{STATE}/web"
CONFIG = f"{STATE}/config"
SECRETS = f"{STATE}/secrets"
AS_ROOT = os.geteuid() == 0
WELL_KNOWN = {"omero", "password", "changeme", "secret", "admin", "root", "ome"}


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


# -- PostgreSQL ---------------------------------------------------------------------------
def given_password() -> str | None:
    """The database password handed to this start, if any (the variable, else the file)."""
    password = os.environ.get("OMERO_DB_PASSWORD")
    if not password and os.environ.get("OMERO_DB_PASSWORD_FILE"):
        with open(os.environ["OMERO_DB_PASSWORD_FILE"], encoding="utf-8") as handle:
            password = handle.read().strip()
    if password and (len(password) < 12 or password.lower() in WELL_KNOWN):
        raise Refused("the database password is well known or shorter than 12 characters")
    return password or None


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


def database() -> None:
    directory(PGDATA, "postgres", 0o700)
    role, name = IMAGE["db_user"], IMAGE["db_name"]
    password = given_password()
    if not os.path.exists(f"{PGDATA}/PG_VERSION"):
        if os.listdir(PGDATA):
            raise Refused(f"{PGDATA} holds files but no PostgreSQL cluster; empty it or mount another volume")
        if password is None:
            directory(SECRETS, "root", 0o700)
            password = secrets.token_urlsafe(24)
            write(f"{SECRETS}/db-password", password + "\n", mode=0o600)
            say(f"generated the database password into {SECRETS}/db-password")
        say("first start: creating the PostgreSQL cluster")
        checked(as_user("postgres", [f"{IMAGE['postgres_bin_dir']}/initdb", "-D", PGDATA, "-U", "postgres",
                                     "-E", "UTF8", "--locale=C.UTF-8", "--auth-local=peer",
                                     "--auth-host=scram-sha-256"]), "initdb")
        single_user([f'CREATE ROLE "{role}" LOGIN PASSWORD \'{scram_verifier(password)}\';',
                     f'CREATE DATABASE "{name}" OWNER "{role}" ENCODING \'UTF8\' TEMPLATE template0;'])
        return
    with open(f"{PGDATA}/PG_VERSION", encoding="ascii") as handle:
        version = handle.read().strip()
    if version != str(IMAGE["postgres_version"]):
        raise Refused(f"the cluster on the volume is PostgreSQL {version}, this image runs "
                      f"{IMAGE['postgres_version']}: dump it with the old image and restore it into this one")
    if password is not None:
        single_user([f'ALTER ROLE "{role}" PASSWORD \'{scram_verifier(password)}\';'])


# -- OMERO.web ----------------------------------------------------------------------------
def config_lines() -> str:
    """The site's overrides: config/*.omero, then CONFIG_omero_* variables (``_`` -> ``.``,
    ``__`` -> ``_``: CONFIG_omero_web_server__list sets omero.web.server_list)."""
    parts = []
    if os.path.isdir(CONFIG):
        for name in sorted(os.listdir(CONFIG)):
            if name.endswith(".omero"):
                with open(os.path.join(CONFIG, name), encoding="utf-8") as handle:
                    parts.append(f"# {name}\n{handle.read()}\n")
    for variable, value in sorted(os.environ.items()):
        if variable.startswith("CONFIG_omero_"):
            key = variable.removeprefix("CONFIG_").replace("__", "\0").replace("_", ".").replace("\0", "_")
            parts.append(f"config set -- {shlex.quote(key)} {shlex.quote(value)}\n")
    return "".join(parts)


def web() -> None:
    user = IMAGE["web_user"]
    directory(WEB, user, 0o750)
    for sub in ("log", "grid", "home"):
        directory(f"{WEB}/{sub}", user, 0o750)
    key = f"{WEB}/django_secret_key"
    if not os.path.exists(key):
        write(key, secrets.token_urlsafe(48), user, 0o600)
    overrides = write(f"{RUN}/omero-web-overrides.omero", config_lines(), user, 0o600)
    image_files = sorted(f"{IMAGE['web_config_dir']}/{name}" for name in os.listdir(IMAGE["web_config_dir"])
                         if name.endswith(".omero"))
    # config.xml (in grid/, on the volume) is made anew: the image's files hold the whole truth
    # (they start with `config drop default`), the site's overrides come last.
    checked(as_user(user, ["env", f"OMERODIR={IMAGE['web_omerodir']}", f"OMERO_USERDIR={WEB}/home",
                           IMAGE["web_omero"], "load", *image_files, overrides]), "loading OMERO.web's configuration")


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
    include {run}/nginx-site.conf;
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
files = {run}/programs/*.conf
"""


def replaced(text: str, old: str, new: str, where: str) -> str:
    """``text`` with its one ``old`` made ``new``: the image's own files, or it refuses."""
    if text.count(old) != 1:
        raise Refused(f"{where} does not hold {old!r} once; the image is not what this entrypoint knows")
    return text.replace(old, new)


def runtime(http_port: int, web_port: int, db_port: int) -> str:
    """supervisord's and nginx's configuration for this start; returns supervisord's."""
    http_address = os.environ.get("OMERO_HTTP_ADDRESS", "")
    if http_address and not re.fullmatch(r"[0-9]{1,3}(\.[0-9]{1,3}){3}", http_address):
        raise Refused(f"OMERO_HTTP_ADDRESS={http_address!r} is not an IPv4 address")
    workers = os.environ.get("OMERO_WEB_WORKERS", str(IMAGE["web_workers"]))
    if not re.fullmatch(r"[1-9][0-9]{0,2}", workers):
        raise Refused(f"OMERO_WEB_WORKERS={workers!r} is not a number of workers")
    directory(f"{RUN}/postgresql", "postgres", 0o2775)
    directory(f"{RUN}/nginx", IMAGE["nginx_user"], 0o700)
    directory(f"{RUN}/programs", "root", 0o755)
    site = IMAGE["nginx_site"]
    with open(site, encoding="utf-8") as handle:
        text = handle.read()
    listen = f"{http_address}:{http_port}" if http_address else str(http_port)
    text = replaced(text, f"listen {IMAGE['http_port']} ", f"listen {listen} ", site)
    text = replaced(text, f"server {IMAGE['web_bind']} ", f"server 127.0.0.1:{web_port} ", site)
    write(f"{RUN}/nginx-site.conf", text)
    write(f"{RUN}/nginx.conf", NGINX_CONF.format(
        user=f"user {IMAGE['nginx_user']};\n" if AS_ROOT else "", run=RUN, log=LOG))

    changes = {
        "postgresql": [(f"-c config_file={IMAGE['postgres_conf']}",
                        f"-c config_file={IMAGE['postgres_conf']} -c port={db_port} "
                        f"-c unix_socket_directories={RUN}/postgresql "
                        f"-c external_pid_file={RUN}/postgresql/postmaster.pid "
                        # Debian's ssl = on names the snakeoil key, not shipped; PostgreSQL
                        # listens on localhost only.
                        "-c ssl=off")],
        "omero-web": [(f"--bind {IMAGE['web_bind']} ", f"--bind 127.0.0.1:{web_port} "),
                      (f"--workers {IMAGE['web_workers']} ", f"--workers {workers} ")],
        "nginx": [("/usr/sbin/nginx -g", f"/usr/sbin/nginx -c {RUN}/nginx.conf -e stderr -g")],
    }
    for program, edits in changes.items():
        path = f"{IMAGE['supervisor_programs']}/{program}.conf"
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
        for old, new in edits + [("stdout_logfile=/var/log/supervisor/", f"stdout_logfile={LOG}/")]:
            text = replaced(text, old, new, path)
        if not AS_ROOT:  # one user runs everything: supervisord cannot switch users
            text = re.sub(r"(?m)^user=.*\n", "", text)
        write(f"{RUN}/programs/{program}.conf", text)
    return write(f"{RUN}/supervisord.conf", SUPERVISORD_CONF.format(
        run=RUN, log=LOG, user="user=root\n" if AS_ROOT else ""))


def main() -> None:
    if not os.access(STATE, os.W_OK):
        raise Refused(f"{STATE} is not writable: mount a volume (or a directory of yours) there")
    http_port = port("OMERO_HTTP_PORT", IMAGE["http_port"])
    web_port = port("OMERO_WEB_PORT", int(IMAGE["web_bind"].rsplit(":", 1)[1]))
    db_port = port("OMERO_DB_PORT", IMAGE["db_port"])
    if len({http_port, web_port, db_port}) < 3:
        raise Refused("OMERO_HTTP_PORT, OMERO_WEB_PORT and OMERO_DB_PORT must differ")
    shutil.rmtree(RUN, ignore_errors=True)  # sockets and pids of an earlier start
    directory(RUN, "root", 0o755)
    directory(LOG, "root", 0o755)
    os.makedirs(CONFIG, mode=0o755, exist_ok=True)  # yours: maybe a read-only mount, never chowned
    database()
    web()
    conf = runtime(http_port, web_port, db_port)
    os.environ["OMERO_USERDIR"] = f"{WEB}/home"  # OMERO's per-user files (the image's homes are read-only)
    say(f"starting supervisord (nginx on port {http_port})")
    os.execv("/usr/bin/supervisord", ["supervisord", "-n", "-c", conf])


if __name__ == "__main__":
    try:
        main()
    except Refused as refused:
        say(str(refused))
        sys.exit(1)

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

import os
import re
import shutil
import signal
import sys

LIB = os.path.dirname(os.path.realpath(__file__))
sys.path.insert(0, LIB)
import omero_container as container  # noqa: E402 - shipped beside this script
from omero_start_services import SECRET_VARIABLES, database, schema, server, site_config, web  # noqa: E402 - beside
from omero_start_state import (  # noqa: E402 - shipped beside this script
    AS_ROOT,
    CONFIG,
    HOME,
    IMAGE,
    LOG,
    RUN,
    SERVER,
    STATE,
    WEB,
    Refused,
    directory,
    hold_state,
    port,
    say,
    write,
)

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

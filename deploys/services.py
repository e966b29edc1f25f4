"""Running services under systemd (booted hosts) or supervisord (containers, chroots).

A component describes its program once; this module turns it into a systemd unit or a
supervisord program, starts it, and restarts it when something it depends on changed on
disk since the deploy last started it (so a run cut short is finished by the next).
systemd loads the units and drop-ins written here (daemon-reload, when it has not loaded
what is on disk) at the next start on the host: a daemon-reload loads every unit.
"""

from weakref import WeakKeyDictionary

from pyinfra.context import ctx_host

from . import container, service_commands
from .kit import template
from .operations import supervised, systemd_running

# host -> ([units], [their files]) written since the host's last systemd start was planned.
_written: WeakKeyDictionary = WeakKeyDictionary()

# supervisord starts programs in this order when the container boots.
PRIORITY = {"postgresql": 100, "omero-server": 200, "omero-web": 300, "omero-jupyterhub": 350, "nginx": 400,
            "omero-backup-schedule": 500}


def program(settings, service: str, *, command: str, user: str, environment: dict | None = None,
            directory: str = "/", unit_template: str | None = None, stopsignal: str = "TERM",
            writable: tuple[str, ...] = (), umask: str | None = None, unit_values: dict | None = None):
    """Install how ``service`` runs: a supervisord program, or (systemd) ``unit_template``
    when given (None: the distribution's own unit is used), sandboxed so that it writes
    only to ``writable``; ``umask`` (octal, e.g. "0027") for what it creates;
    ``unit_values``: what else the unit template reads."""
    if settings.service_manager == "supervisord":
        if settings.image_build:
            environment = {"HOME": container.expansion(container.home(service)), **(environment or {})}
        template(
            "supervisord/program.conf.j2",
            settings.platform.supervisor_program_path(service),
            program=service, command=command, environment=environment or {},
            run_as=container.expansion(container.run_as(service)) if settings.image_build else user,
            directory=directory, priority=PRIORITY[service], stopsignal=stopsignal, umask=umask,
            image_build=settings.image_build,
        )
    elif unit_template:
        unit_file = _unit_file(service)
        template(unit_template, unit_file, command=command, run_as=user, environment=environment or {},
                 directory=directory, writable=writable, umask=umask, **(unit_values or {}))
        _loaded_at_next_start(f"{service}.service", unit_file)


def _loaded_at_next_start(unit: str, path: str) -> None:
    units, files = _written.setdefault(ctx_host.get(), ([], []))
    units.append(unit)
    files.append(path)


def _unit_file(service: str, kind: str = "service") -> str:
    return f"/etc/systemd/system/{service}.{kind}"


def drop_in(unit: str, name: str, src: str, **context):
    """A systemd drop-in for ``unit`` (ours or the distribution's), loaded by systemd;
    ``context``: the values ``src`` reads."""
    path = f"/etc/systemd/system/{unit}.d/{name}.conf"
    template(src, path, **context)
    _loaded_at_next_start(unit, path)
    return path


def timer(settings, service: str, schedule: list[str], description: str):
    """A oneshot ``service`` started by a systemd timer (``schedule``: its [Timer] lines);
    the timer enabled and running. The service itself is written by the caller."""
    timer_file = _unit_file(service, "timer")
    template("backup/omero-backup.timer.j2", timer_file, schedule=schedule,
             description=description)
    _loaded_at_next_start(f"{service}.service", _unit_file(service))
    _loaded_at_next_start(f"{service}.timer", timer_file)
    return _systemd_running(name=f"Run and enable {service}.timer", service=service, kind="timer",
                            restart_sources=[timer_file], stamp=settings.stamp(f"{service}-timer-started"))


def program_users(settings) -> dict[str, str]:
    """Whom each program of the image runs as under root."""
    return {"postgresql": "postgres", "nginx": "root", "omero-web": settings.web_user,
            "omero-server": settings.server_user}


def program_homes(settings) -> dict[str, str]:
    """Each program's HOME in an image build: its user's (Debian's, the image's)."""
    return {"postgresql": "/var/lib/postgresql", "nginx": "/root", "omero-web": settings.web_home,
            "omero-server": settings.server_home}


def image_environment(settings) -> dict[str, str]:
    """supervisord's environment in an image build: what the programs read (``container``),
    as the deploy's options give it; a container's start gives its own."""
    return {container.DB_PORT: str(settings.db_port), container.WEB_PORT: str(settings.web_bind.port),
            # scripts/build-image sets omero_web_workers.
            container.WEB_WORKERS: str(settings.web_workers or 1),
            container.PG_SOCKETS: "/var/run/postgresql", container.NGINX_CONF: "/etc/nginx/nginx.conf",
            **{container.run_as(program): user for program, user in program_users(settings).items()},
            **{container.home(program): home for program, home in program_homes(settings).items()}}


def restart_paths(settings, service: str, sources=()) -> list[str]:
    """What ``service`` is restarted for (as ``start`` decides): its unit or program file, and ``sources``."""
    if settings.service_manager == "supervisord":
        return [settings.platform.supervisor_program_path(service), *sources]
    return [_unit_file(service), *sources]


def start(settings, service: str, restart_sources=()):
    """Make ``service`` run (and start at boot), restarted when any of ``restart_sources``
    (paths, globs: its configuration, its code) changed since the deploy last started it.

    Returns the operation, whose change means the service was (re)started.
    """
    stamp = settings.stamp(f"{service}-started")
    if settings.service_manager == "supervisord":
        program_file = settings.platform.supervisor_program_path(service)
        return supervised(name=f"Run {service} under supervisord", program=service,
                          conf=settings.platform.supervisor_conf,
                          restart_sources=[program_file, *restart_sources], stamp=stamp,
                          environment=image_environment(settings) if settings.image_build else None)
    return _systemd_running(name=f"Run and enable {service}", service=service,
                            restart_sources=[_unit_file(service), *restart_sources], stamp=stamp)


def _systemd_running(**kwargs):
    """systemd_running, loading first what was written since the last start."""
    units, files = _written.pop(ctx_host.get(), ([], []))
    return systemd_running(**kwargs, units=tuple(units), unit_files=tuple(files))


def action_command(settings, action: str, service: str) -> str:
    """The shell command for ``action`` on ``service`` under this host's service manager
    (reload: nginx's graceful one)."""
    return service_commands.shell(settings.service_manager, action, service, settings.platform.supervisor_conf)


def action_argvs(settings, action: str, names: list[str]) -> list[list[str]]:
    """``action`` on each service of ``names``, as argument lists (the backup tool's configuration)."""
    return [service_commands.argv(settings.service_manager, action, service, settings.platform.supervisor_conf)
            for service in names]

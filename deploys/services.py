"""Running services under systemd (booted hosts) or supervisord (containers, chroots).

A component describes its program once; this module turns it into a systemd unit or a
supervisord program, starts it, and restarts it only when something it depends on changed.
"""

from pathlib import Path

from pyinfra.operations import files, server, systemd

from .operations import supervised

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"

# supervisord starts programs in this order when the container boots.
PRIORITY = {"postgresql": 100, "omero-server": 200, "omero-web": 300, "nginx": 400}


def template(settings, src: str, dest: str, *, user="root", group="root", mode="644", **context):
    """files.template with our template directory and ownership spelled out."""
    return files.template(
        name=f"Write {dest}",
        src=str(TEMPLATES / src),
        dest=dest,
        user=user,
        group=group,
        mode=mode,
        settings=settings,
        **context,
    )


def program(settings, service: str, *, command: str, user: str, environment: dict | None = None,
            directory: str = "/", unit_template: str | None = None, stopsignal: str = "TERM"):
    """Install how ``service`` runs: a supervisord program, or (systemd) ``unit_template``
    when given (None: the distribution's own unit is used). Returns the operation, for
    ``restart_when`` of ``start``."""
    if settings.service_manager == "supervisord":
        return template(
            settings, "supervisord/program.conf.j2",
            settings.platform.supervisor_program_path(service),
            program=service, command=command, run_as=user, environment=environment or {},
            directory=directory, priority=PRIORITY[service], stopsignal=stopsignal,
        )
    if unit_template:
        unit = template(settings, unit_template, f"/etc/systemd/system/{service}.service",
                        command=command, run_as=user, environment=environment or {},
                        directory=directory)
        systemd.daemon_reload(name="Reload systemd units", _if=unit.did_change)
        return unit
    return None


def start(settings, service: str, restart_when=()):
    """Make ``service`` run (and start at boot); restart it when any of ``restart_when`` changed.

    Returns the operations that may have (re)started it, for readiness waits.
    """
    restart_when = [op for op in restart_when if op is not None]

    def restart_needed() -> bool:
        # A service this run has just started already runs with what changed.
        return any(op.did_change() for op in restart_when) and not started.did_change()
    if settings.service_manager == "supervisord":
        conf = settings.platform.supervisor_conf
        started = supervised(name=f"Run {service} under supervisord", program=service, conf=conf)
        restarted = supervised(
            name=f"Restart {service} (something it depends on changed)", program=service,
            conf=conf, restart=True, _if=restart_needed,
        ) if restart_when else None
    else:
        started = systemd.service(name=f"Run and enable {service}", service=service,
                                  running=True, enabled=True)
        restarted = systemd.service(
            name=f"Restart {service} (something it depends on changed)", service=service,
            restarted=True, _if=restart_needed,
        ) if restart_when else None
    return [op for op in (started, restarted) if op is not None]


def stop_for_upgrade(settings, service: str) -> None:
    if settings.service_manager == "supervisord":
        conf = settings.platform.supervisor_conf
        server.shell(name=f"Stop {service} for the upgrade",
                     commands=[f"supervisorctl -c {conf} stop {service}"])
    else:
        systemd.service(name=f"Stop {service} for the upgrade", service=service, running=False)

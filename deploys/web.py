"""OMERO.web: omero-web in its own venv, configured from files, run by gunicorn behind nginx."""

import json

from pyinfra.facts.hardware import Cpus
from pyinfra.operations import files

from . import services
from .prerequisites import omero_venv
from .operations import changed, run_once, shell_when, wait_until
from .users import as_user, omero_user


def static_root(settings) -> str:
    return f"{settings.web_omerodir}/var/static"


def install(settings) -> list:
    omero_user(settings, settings.web_user)
    files.directory(name="Create the OMERO.web base directory", path=settings.web_basedir,
                    user="root", group="root", mode="755")
    venv_changes = omero_venv(settings, f"{settings.web_basedir}/venv3", [
        f"omero-py=={settings.py_version}", f"omero-web=={settings.web_version}", "gunicorn",
    ])
    # OMERODIR: config.xml, logs, the Django secret key (0600) and the static files nginx serves.
    for path in (settings.web_omerodir, f"{settings.web_omerodir}/var"):
        files.directory(name=f"Create {path}", path=path, user=settings.web_user,
                        group=settings.web_user, mode="755")
    return venv_changes


def configure(settings, host_cpus: int, venv_changes: list) -> list:
    config_dir = f"{settings.web_basedir}/config"
    files.directory(name="Create the OMERO.web config directory", path=config_dir,
                    user="root", group=settings.web_user, mode="750")
    host_part, _, port = settings.web_bind.rpartition(":")
    server_list = json.dumps([[address, 4064, "omero"] for address in settings.web_server_addresses])
    config = services.template(
        settings, "omero/web.omero.j2", f"{config_dir}/01-omero-web.omero",
        user="root", group=settings.web_user, mode="640",
        server_list=server_list, bind_host=host_part, bind_port=port,
        workers=workers(settings, host_cpus), static_root=static_root(settings),
        web_config={key: value if isinstance(value, str) else json.dumps(value)
                    for key, value in settings.web_config.items()},
    )
    omero = f"OMERODIR={settings.web_omerodir} {settings.web_basedir}/venv3/bin/omero"
    load = f"{omero} load --glob '{config_dir}/*.omero'"
    collect = f"{omero} web syncmedia >/dev/null"
    # Each step runs when what it depends on changed, and also whenever its result is
    # missing, so a run that failed half-way is completed by the next one.
    loaded = shell_when(name="Load the OMERO.web configuration", commands=[load],
                        when=changed(config, *venv_changes), **as_user(settings.web_user))
    run_once(name="Load the OMERO.web configuration (none loaded yet)", command=load,
             creates=f"{settings.web_omerodir}/etc/grid/config.xml", **as_user(settings.web_user))
    shell_when(name="Collect OMERO.web's static files (nginx serves them)", commands=[collect],
               when=changed(loaded, *venv_changes), **as_user(settings.web_user))
    run_once(name="Collect OMERO.web's static files (none collected yet)", command=collect,
             creates=f"{static_root(settings)}/webgateway", **as_user(settings.web_user))
    return [config, *venv_changes]


def workers(settings, host_cpus: int) -> int:
    return settings.web_workers or 2 * host_cpus + 1


def start(settings, host_cpus: int, changes: list) -> list:
    venv = f"{settings.web_basedir}/venv3"
    program = services.program(
        settings, "omero-web",
        # gunicorn in the foreground, as `omero web start` would run it but without a
        # daemon or a django.pid to go stale (a classic container restart failure).
        # --reuse-port: a master restarted after a crash binds while its orphaned workers
        # still hold the port (they exit once they see their parent gone).
        command=(f"{venv}/bin/gunicorn --bind {settings.web_bind} --reuse-port "
                 f"--workers {workers(settings, host_cpus)} --threads 1 --timeout 60 "
                 f"--max-requests 500 omeroweb.wsgi:application"),
        user=settings.web_user, environment={"OMERODIR": settings.web_omerodir},
        directory=settings.web_omerodir, unit_template="systemd/omero-web.service.j2",
        writable=(f"{settings.web_omerodir}/var", f"/var/lib/{settings.web_user}"),
    )
    started = services.start(settings, "omero-web", restart_when=[program, *changes])
    wait_until(name="Wait until OMERO.web answers",
               check=f"curl -fs -o /dev/null http://{settings.web_bind}/webclient/login/",
               what="OMERO.web", when=changed(started))
    return started


def deploy(settings, host) -> list:
    cpus = host.get_fact(Cpus) or 1
    changes = configure(settings, cpus, install(settings))
    return start(settings, cpus, changes)

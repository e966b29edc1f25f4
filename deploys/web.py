"""OMERO.web: omero-web in its own venv, configured from files, run by gunicorn behind nginx."""

import json
import shlex

from pyinfra import host
from pyinfra.facts.hardware import Cpus

from . import container, kit, redis, rolling, services
from .batched import fact
from .operations import changed, refreshed, wait_until, waiting
from .prerequisites import omero_venv, site_packages
from .readonly import web_server_list
from .users import omero_user
from .webapps import APPS

# django-redis for sessions in Redis (omero_redis), pinned to a release for omero-web's Django 5.2.
SESSION_PACKAGES = ("django-redis==7.0.0", "redis==8.1.0")


def packages(settings) -> list[str]:
    """What OMERO.web's venv holds beside IcePy."""
    return [f"omero-py=={settings.py_version}", f"omero-web=={settings.web_version}", "gunicorn",
            *(f"{app.package}=={app.version}" for app in settings.web_apps),
            *(SESSION_PACKAGES if settings.redis_address else ())]


def install(settings) -> None:
    omero_user(settings, settings.web_user, shared_group=False)
    kit.directory(name="Create the OMERO.web base directory", path=settings.web_basedir,
                  user="root", group="root", mode="755")
    if settings.front:
        # Behind the front proxy, new releases reach the running nodes one at a time.
        rolling.upgraded(
            name="Upgrade OMERO.web in turn, drained from the proxy", service="omero-web",
            manager=settings.service_manager, supervisor_conf=settings.platform.supervisor_conf,
            virtualenv=settings.web_venv, packages=packages(settings),
            collect=(f"runuser -u {shlex.quote(settings.web_user)} -- env "
                     f"{_omero(settings)} web syncmedia >/dev/null"),
            stamp=settings.stamp("omero-web-started"), proxies=list(settings.front.proxies),
            node_file=settings.proxy_node_file(host.name), endpoint=settings.front.endpoint,
            check=waiting(login_check(settings), "OMERO.web"))
    omero_venv(settings, settings.web_venv, packages(settings))
    listed = {app.package for app in settings.web_apps}
    removed = [app for name, app in APPS.items() if name not in listed]
    kit.pip_packages(name="Uninstall the OMERO.web apps not in omero_web_apps",
                     packages=[app.package for app in removed], present=False, virtualenv=settings.web_venv)
    if removed:
        kit.directories(name="Remove the static files of the OMERO.web apps not in omero_web_apps",
                        paths=dict.fromkeys(f"{settings.web_static_root}/{app.static_dir}" for app in removed),
                        present=False)
    # OMERODIR: logs, the Django secret key (0600) and the static files nginx serves in var/;
    # etc/grid/config.xml holds every omero_web_config value: the web user's alone.
    omerodir = settings.web_omerodir
    kit.directories(name=f"Create {omerodir} (OMERODIR)",
                    paths={omerodir: "755", f"{omerodir}/var": "755", f"{omerodir}/etc": "700",
                           f"{omerodir}/etc/grid": "700"},
                    user=settings.web_user, group=settings.web_user)


def configure(settings, host_cpus: int) -> list[str]:
    """Write and load OMERO.web's configuration, collect its static files; returns what a
    restart applies."""
    config_dir = settings.web_config_dir
    kit.directory(name="Create the OMERO.web config directory", path=config_dir,
                  user="root", group=settings.web_user, mode="750")
    server_list = json.dumps(web_server_list(settings.web_server_addresses, settings.readonly_balancer,
                                             settings.web_readonly))
    config_file = f"{config_dir}/01-omero-web.omero"
    # Any omero_web_config value may be a secret (a mail password): never shown by --diff.
    kit.secret_template(
        "omero/web.omero.j2", config_file, user="root", group=settings.web_user, mode="640",
        server_list=server_list, bind_host=settings.web_bind.address, bind_port=settings.web_bind.port,
        workers=workers(settings, host_cpus), static_root=settings.web_static_root, https=settings.site_https,
        site_origins=settings.site_origins, web_allowed_hosts=settings.web_allowed_hosts,
        web_apps=settings.web_apps, web_config=settings.web_config,
        caches=redis.caches(settings) if settings.redis_address else None, secret_key=settings.web_secret_key,
    )
    omero = _omero(settings)
    code = site_packages(settings.web_venv)
    # Each runs when what it depends on is newer on disk than its last completion.
    loaded = settings.stamp("omero-web-config-loaded")
    refreshed(name="Load the OMERO.web configuration",
              commands=[f"(umask 077 && {omero} load --glob {shlex.quote(config_dir + '/*.omero')})"],
              sources=[config_file, code], stamp=loaded, user=settings.web_user)
    # Collected afresh: collectstatic only adds and overwrites, so after an upgrade the older
    # release's files (hashed bundle names) would stay served beside the new ones.
    static_root = shlex.quote(settings.web_static_root)
    refreshed(name="Collect OMERO.web's static files (nginx serves them)",
              commands=[f"test ! -d {static_root} || find {static_root} -mindepth 1 -delete",
                        f"{omero} web syncmedia >/dev/null"],
              sources=[loaded, code], stamp=settings.stamp("omero-web-static-collected"),
              user=settings.web_user)
    return [config_file, code]


def _omero(settings) -> str:
    """OMERO.web's ``omero`` command with its OMERODIR, for a shell."""
    return f"OMERODIR={shlex.quote(settings.web_omerodir)} {shlex.quote(settings.web_omero)}"


def login_check(settings) -> str:
    """A shell command that succeeds when OMERO.web serves its login page."""
    # Under a name OMERO.web allows (allowed_hosts), as nginx passes it on.
    host_header = f"-H {shlex.quote('Host: ' + settings.check_name)} " if settings.check_name else ""
    return f"curl -gfs -o /dev/null {host_header}{shlex.quote(settings.web_url + '/webclient/login/')}"


def workers(settings, host_cpus: int) -> int:
    return settings.web_workers or 2 * host_cpus + 1


def start(settings, host_cpus: int, restart_sources: list[str]) -> None:
    bind, count = settings.web_bind, workers(settings, host_cpus)
    if settings.image_build:
        # A container's port and workers.
        bind = f"{settings.web_bind.host}:{container.expansion(container.WEB_PORT)}"
        count = container.expansion(container.WEB_WORKERS)
    services.program(
        settings, "omero-web",
        # gunicorn in the foreground, as `omero web start` would run it but without a
        # daemon or a django.pid to go stale (a classic container restart failure).
        # --reuse-port: a master restarted after a crash binds while its orphaned workers
        # still hold the port (they exit once they see their parent gone).
        command=(f"{settings.web_gunicorn} --bind {bind} --reuse-port "
                 f"--workers {count} --threads 1 --timeout {settings.web_request_timeout} "
                 f"--max-requests 500 omeroweb.wsgi:application"),
        user=settings.web_user, environment={"OMERODIR": settings.web_omerodir},
        directory=settings.web_omerodir, unit_template="systemd/omero-web.service.j2", umask="0027",
        writable=(f"{settings.web_omerodir}/var", settings.web_home),
        unit_values={"roles": settings.roles, "postgres_unit": settings.platform.postgres_unit},
    )
    check = login_check(settings)
    if settings.front:
        # Behind the front proxy, the nodes restart one at a time, each drained from it first.
        rolling.restarted(
            name="Restart omero-web in turn, drained from the proxy", service="omero-web",
            manager=settings.service_manager, supervisor_conf=settings.platform.supervisor_conf,
            restart_sources=services.restart_paths(settings, "omero-web", restart_sources),
            stamp=settings.stamp("omero-web-started"), proxies=list(settings.front.proxies),
            node_file=settings.proxy_node_file(host.name), endpoint=settings.front.endpoint,
            check=waiting(check, "OMERO.web"))
    started = services.start(settings, "omero-web", restart_sources=restart_sources)
    wait_until(name="Wait until OMERO.web answers", check=check, what="OMERO.web", when=changed(started))


def deploy(settings) -> None:
    cpus = fact(Cpus) or 1
    install(settings)
    start(settings, cpus, configure(settings, cpus))

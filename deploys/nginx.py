"""nginx in front of OMERO.web: our site, serving the static files, the default site off."""

from pyinfra.operations import apt, dnf, files

from . import services
from .operations import changed, shell_when, wait_until
from .web import static_root


def install(settings) -> None:
    if settings.platform.is_debian:
        apt.packages(name="Install nginx", packages=["nginx"], no_recommends=True)
    else:
        dnf.packages(name="Install nginx", packages=["nginx"])


def configure(settings) -> list:
    platform = settings.platform
    changes = [
        files.link(name=f"Turn off the distribution's default site {path}", path=path,
                   present=False)
        for path in platform.nginx_default_sites
    ]
    if not platform.is_debian:
        # RHEL's nginx.conf carries the default server itself.
        changes.append(services.template(settings, "nginx/nginx.conf.j2", "/etc/nginx/nginx.conf"))
    changes.append(services.template(settings, "nginx/omero-web.conf.j2", platform.nginx_site_path,
                                     static_root=static_root(settings)))
    # A bad site must stop the deploy here, before nginx is restarted with it.
    shell_when(name="Check the nginx configuration", commands=["nginx -t -q"],
               when=changed(*changes))
    return changes


def start(settings, changes: list) -> None:
    program = services.program(settings, "nginx", command="/usr/sbin/nginx -g 'daemon off;'",
                               user="root", stopsignal="QUIT")
    if settings.service_manager == "systemd" and "omero_web" in settings.roles:
        changes.append(services.drop_in(settings, "nginx.service", "omero-web",
                                        "systemd/nginx-after-omero-web.conf.j2"))
    started = services.start(settings, "nginx", restart_when=[program, *changes])
    listen = settings.nginx_listen if ":" in settings.nginx_listen else f"127.0.0.1:{settings.nginx_listen}"
    wait_until(name="Wait until nginx serves OMERO.web",
               check=f"curl -fs -o /dev/null http://{listen}/webclient/login/",
               what="nginx", when=changed(started))


def deploy(settings) -> None:
    install(settings)
    start(settings, configure(settings))

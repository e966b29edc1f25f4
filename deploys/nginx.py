"""nginx in front of OMERO.web: our site, serving the static files, the default site off."""

import shlex

from pyinfra.operations import apt, dnf, files

from . import services
from .operations import changed, refreshed, wait_until


def install(settings) -> None:
    if settings.platform.is_debian:
        apt.packages(name="Install nginx", packages=["nginx"], no_recommends=True)
    else:
        dnf.packages(name="Install nginx", packages=["nginx"])


def configure(settings) -> list[str]:
    """Write nginx's configuration; returns the files a restart applies."""
    platform = settings.platform
    written = []
    for path in platform.nginx_default_sites:
        files.link(name=f"Turn off the distribution's default site {path}", path=path, present=False)
    if not platform.is_debian:
        # RHEL's nginx.conf carries the default server itself.
        written.append("/etc/nginx/nginx.conf")
        services.template(settings, "nginx/nginx.conf.j2", written[-1])
    written.append(platform.nginx_site_path)
    services.template(settings, "nginx/omero-web.conf.j2", written[-1],
                      static_root=settings.web_static_root)
    # A bad site stops the deploy before nginx is restarted with it, on this run and on
    # every later one until it is fixed (nginx's start stamp is only touched by a start).
    refreshed(name="Check the nginx configuration", commands=["nginx -t -q"],
              sources=written, stamp=settings.stamp("nginx-started"), touch=False)
    return written


def start(settings, config_files: list[str]) -> None:
    services.program(settings, "nginx", command="/usr/sbin/nginx -g 'daemon off;'",
                     user="root", stopsignal="QUIT")
    if settings.service_manager == "systemd" and "omero_web" in settings.roles:
        config_files.append(services.drop_in(settings, "nginx.service", "omero-web",
                                             "systemd/nginx-after-omero-web.conf.j2"))
    started = services.start(settings, "nginx", restart_sources=config_files)
    wait_until(name="Wait until nginx serves OMERO.web",
               check=f"curl -gfs -o /dev/null {shlex.quote(settings.nginx_url + '/webclient/login/')}",
               what="nginx", when=changed(started))


def deploy(settings) -> None:
    install(settings)
    start(settings, configure(settings))

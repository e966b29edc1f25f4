"""nginx in front of OMERO.web: our site (HTTPS when a certificate is given or made), the
static files served here, the distribution's default site off."""

from pyinfra import host
from pyinfra.operations import files

from facts.omero import HostAddresses

from . import analysis, kit, services
from .operations import changed, refreshed, secret_file, self_signed_certificate, wait_until

SELF_SIGNED_DAYS = 397  # what browsers accept for a certificate's lifetime


def install(settings) -> None:
    packages = ["nginx"] + (["openssl"] if settings.tls_mode in ("self-signed", "acme") else [])
    kit.packages(settings, "Install nginx", packages)


def _tls(settings) -> list[str]:
    """The site's certificate and key on the host; returns their paths."""
    files.directory(name="Create nginx's TLS directory", path=settings.tls_dir, user="root",
                    group="root", mode="700")
    certificate, key = settings.tls_certificate_path, settings.tls_key_path
    if settings.tls_mode == "given":
        files.put(name="Install the site's certificate chain", src=settings.nginx_tls_certificate,
                  dest=certificate, user="root", group="root", mode="644")
        with open(settings.nginx_tls_key, encoding="ascii") as handle:
            secret_file(name="Install the site's private key", dest=key, content=handle.read(),
                        user="root", group="root", mode="600")
        return [certificate, key]
    # For the server names and every address the host has (reached by address too).
    addresses = {*host.get_fact(HostAddresses), *([settings.address] if settings.address else [])}
    names = [*settings.certificate_names, *sorted(addresses - set(settings.certificate_names))]
    self_signed_certificate(
        name="Make the site's self-signed certificate when due",
        certificate=certificate, key=key, names=names, renew_days=settings.nginx_tls_renew_days,
        days=SELF_SIGNED_DAYS, renewed_elsewhere=settings.tls_mode == "acme",
    )
    if settings.tls_mode == "acme":
        kit.template(settings, "nginx/omero-tls-renewed.sh.j2", settings.tls_renewed_hook,
                          mode="755", reload=services.action_command(settings, "reload", "nginx"))
    return [certificate, key]


def configure(settings) -> list[str]:
    """Write nginx's configuration; returns the files a reload applies."""
    platform = settings.platform
    written = []
    for path in platform.nginx_default_sites:
        files.link(name=f"Turn off the distribution's default site {path}", path=path, present=False)
    if not platform.is_debian:
        # RHEL's nginx.conf carries the default server itself.
        written.append("/etc/nginx/nginx.conf")
        kit.template(settings, "nginx/nginx.conf.j2", written[-1])
    if settings.https:
        written += _tls(settings)
        files.directory(name="Create the ACME challenge directory", path=settings.acme_webroot,
                        user="root", group="root", mode="755")
    written.append(platform.nginx_site_path)
    kit.template(settings, "nginx/omero-web.conf.j2", written[-1],
                      static_root=settings.web_static_root)
    if "omero_analysis" in settings.roles:
        written.append(analysis.site(settings))
    # A bad site stops the deploy before nginx loads it, on this run and on every later
    # one until it is fixed (the reload stamp is only touched by a reload).
    refreshed(name="Check the nginx configuration", commands=["nginx -t -q"],
              sources=written, stamp=settings.stamp("nginx-reloaded"), touch=False)
    return written


def start(settings, config_files: list[str]) -> None:
    services.program(settings, "nginx", command="/usr/sbin/nginx -g 'daemon off;'",
                     user="root", stopsignal="QUIT")
    if settings.service_manager == "systemd" and "omero_web" in settings.roles:
        services.drop_in(settings, "nginx.service", "omero-web", "systemd/nginx-after-omero-web.conf.j2")
    started = services.start(settings, "nginx")
    # A reload: new workers take the new configuration or certificate while the old ones
    # finish the requests they are serving (a restart would cut them off).
    reloaded = refreshed(name="Reload nginx for its new configuration",
                         commands=[services.action_command(settings, "reload", "nginx")],
                         sources=config_files, stamp=settings.stamp("nginx-reloaded"))
    wait_until(name="Wait until nginx serves OMERO.web",
               check=settings.nginx_check("/webclient/login/"),
               what="nginx", when=changed(started, reloaded))


def deploy(settings) -> None:
    install(settings)
    start(settings, configure(settings))

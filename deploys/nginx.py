"""nginx in front of OMERO.web: our site (HTTPS when a certificate is given or made), the
static files served here, the distribution's default site off."""

from io import StringIO

from facts.omero import HostAddresses

from . import analysis, container, kit, services
from .batched import fact
from .certificate_operations import self_signed_certificate
from .operations import changed, refreshed, secret_file, wait_until
from .values import TlsMode

SELF_SIGNED_DAYS = 397  # what browsers accept for a certificate's lifetime


def _tls(settings) -> list[str]:
    """The site's certificate and key on the host; returns their paths."""
    kit.directory(name="Create nginx's TLS directory", path=settings.tls_dir, user="root",
                  group="root", mode="700")
    certificate, key = settings.tls_certificate_path, settings.tls_key_path
    if settings.tls_mode is TlsMode.GIVEN:
        kit.put(name="Install the site's certificate chain", src=settings.nginx_tls_certificate,
                dest=certificate, user="root", group="root", mode="644")
        with open(settings.nginx_tls_key, encoding="ascii") as handle:
            secret_file(name="Install the site's private key", dest=key, content=handle.read(),
                        user="root", group="root", mode="600")
        return [certificate, key]
    # For the server names and every address the host has (reached by address too).
    addresses = {*fact(HostAddresses), *([settings.address] if settings.address else [])}
    names = [*settings.certificate_names, *sorted(addresses - set(settings.certificate_names))]
    self_signed_certificate(
        name="Make the site's self-signed certificate when due",
        certificate=certificate, key=key, names=names, renew_days=settings.nginx_tls_renew_days,
        days=SELF_SIGNED_DAYS, renewed_elsewhere=settings.tls_mode is TlsMode.ACME,
    )
    if settings.tls_mode is TlsMode.ACME:
        kit.template("nginx/omero-tls-renewed.sh.j2", settings.tls_renewed_hook, mode="755",
                     reload=services.action_command(settings, "reload", "nginx"), tls_dir=settings.tls_dir,
                     tls_renewed_hook=settings.tls_renewed_hook,
                     reloaded_stamp=settings.stamp("nginx-reloaded"))
    return [certificate, key]


def configure_base(settings) -> list[str]:
    """What every site of ours needs (an OMERO.web host's, a front proxy's): the distribution's
    default site off, and under HTTPS the certificate and the ACME challenge directory;
    returns the files a reload applies."""
    platform = settings.platform
    written = []
    for path in platform.nginx_default_sites:
        kit.link_absent(name=f"Turn off the distribution's default site {path}", path=path)
    if not platform.is_debian:
        # RHEL's nginx.conf carries the default server itself.
        written.append("/etc/nginx/nginx.conf")
        kit.template("nginx/nginx.conf.j2", written[-1], nginx_user=platform.nginx_user)
    if settings.https:
        written += _tls(settings)
        kit.directory(name="Create the ACME challenge directory", path=settings.acme_webroot,
                      user="root", group="root", mode="755")
    return written


def checked(settings, written: list[str]) -> None:
    """A bad site stops the deploy before nginx loads it, on this run and on every later one
    until it is fixed (the reload stamp is only touched by a reload)."""
    refreshed(name="Check the nginx configuration", commands=["nginx -t -q"],
              sources=written, stamp=settings.stamp("nginx-reloaded"), touch=False)


def configure(settings) -> list[str]:
    """Write nginx's configuration; returns the files a reload applies."""
    platform = settings.platform
    written = configure_base(settings)
    if settings.image_build:
        # What a container's start writes again (omero_image/entrypoint.py), here as the
        # build's options give it.
        kit.directory(name="Create the container's runtime directory", path=container.RUN,
                      user="root", group="root", mode="755")
        for include, content in container.nginx_includes(str(settings.nginx_listen), str(settings.web_bind)).items():
            written.append(f"{container.RUN}/{include}")
            kit.put(name=f"Write {written[-1]}", src=StringIO(content), dest=written[-1],
                    user="root", group="root", mode="644")
    written.append(platform.nginx_site_path)
    kit.template("nginx/omero-web.conf.j2", written[-1], **site_values(settings))
    if "omero_analysis" in settings.roles:
        written.append(analysis.site(settings))
    checked(settings, written)
    return written


def site_values(settings) -> dict:
    """What the OMERO.web site's template reads."""
    return {
        **server_values(settings), "server_names": settings.server_names,
        "nginx_server_name": settings.site_server_name, "front": settings.front, "image_build": settings.image_build,
        "web_bind": settings.web_bind, "static_root": settings.web_static_root,
    }


def server_values(settings) -> dict:
    """What every site's server blocks read (templates/nginx/macros.j2): listening, TLS, limits."""
    platform = settings.platform
    return {
        "any_host": settings.any_host, "container": container, "nginx_listen": settings.nginx_listen,
        "https": settings.https, "nginx_https_listen": settings.nginx_https_listen,
        "acme_webroot": settings.acme_webroot, "nginx_http2_directive": platform.nginx_http2_directive,
        "nginx_rejects_handshakes": platform.nginx_rejects_handshakes,
        "tls_certificate_path": settings.tls_certificate_path, "tls_key_path": settings.tls_key_path,
        "nginx_hsts": settings.nginx_hsts, "nginx_client_max_body_size": settings.nginx_client_max_body_size,
        "web_request_timeout": settings.web_request_timeout,
    }


def start(settings, config_files: list[str], check_path: str | None = "/webclient/login/",
          check_status: int | None = None) -> None:
    """nginx running the configuration ``config_files`` make; after a (re)start or reload,
    ``check_path`` fetched from it until it answers (with ``check_status``, when given: a
    reload returns before nginx serves the new configuration; None: no check)."""
    # A container's own nginx.conf; errors on stderr before it is read (the image is read-only).
    conf = f"-c {container.expansion(container.NGINX_CONF)} -e stderr " if settings.image_build else ""
    services.program(settings, "nginx", command=f"/usr/sbin/nginx {conf}-g 'daemon off;'",
                     user="root", stopsignal="QUIT")
    if settings.service_manager == "systemd" and "omero_web" in settings.roles:
        services.drop_in("nginx.service", "omero-web", "systemd/nginx-after-omero-web.conf.j2",
                         roles=settings.roles)
    started = services.start(settings, "nginx")
    # A reload: new workers take the new configuration or certificate while the old ones
    # finish the requests they are serving (a restart would cut them off).
    reloaded = refreshed(name="Reload nginx for its new configuration",
                         commands=[services.action_command(settings, "reload", "nginx")],
                         sources=config_files, stamp=settings.stamp("nginx-reloaded"))
    if check_path:
        wait_until(name="Wait until nginx serves OMERO.web", check=settings.nginx_check(check_path, check_status),
                   what="nginx", when=changed(started, reloaded))


def deploy(settings) -> None:
    start(settings, configure(settings))

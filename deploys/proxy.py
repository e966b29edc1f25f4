"""The front proxy (omero_proxy hosts): nginx terminating TLS for the site, one upstream over
every omero_web host with passive health checks, caches per kind of response, and a
maintenance page. The web nodes behind it admit it alone (nginx.py's site, ``front``)."""

from io import StringIO

from . import kit, nginx
from .operations import only_entries

# Passive health: a node failing this often is skipped for this long, then tried again.
_HEALTH = "max_fails=2 fail_timeout=10s"


def node_line(endpoint: str, down: bool = False) -> str:
    """A web node's line in the proxy's upstream (``down``: drained, sent no new request)."""
    return f"server {endpoint} {_HEALTH}{' down' if down else ''};\n"


def site_values(settings) -> dict:
    """What the proxy's site template reads."""
    return {
        **nginx.server_values(settings), "nginx_server_name": settings.nginx_server_name, "image_build": False,
        "cache_dir": settings.proxy_cache_dir,
        "cache_static_size": settings.proxy_cache_static_size,
        "cache_thumbnails_size": settings.proxy_cache_thumbnails_size,
        "cache_images_size": settings.proxy_cache_images_size, "cache_minutes": settings.proxy_cache_minutes,
        "cache_shared": settings.proxy_cache_shared, "maintenance": settings.proxy_maintenance,
        "maintenance_dir": settings.maintenance_dir, "nodes_dir": settings.proxy_nodes_dir,
    }


def configure(settings) -> list[str]:
    """Write the proxy's nginx configuration; returns the files a reload applies."""
    written = nginx.configure_base(settings)
    user = settings.platform.nginx_user
    kit.directory(name="Create the proxy's cache directory", path=settings.proxy_cache_dir,
                  user=user, group=user, mode="700")
    kit.directory(name="Create the maintenance page's directory", path=settings.maintenance_dir,
                  user="root", group="root", mode="755")
    kit.put(name="Install the maintenance page", src=str(kit.FILES / "omero-maintenance.html"),
            dest=f"{settings.maintenance_dir}/maintenance.html", user="root", group="root", mode="644")
    kit.directory(name="Create the directory of the proxy's web nodes", path=settings.proxy_nodes_dir,
                  user="root", group="root", mode="755")
    # Every node up: a node a killed rolling restart left drained is put back here. Its web
    # deploy ran before (deploy.py's order), so a node added to the inventory serves already.
    for name, endpoint in settings.web_nodes:
        written.append(settings.proxy_node_file(name))
        kit.put(name=f"Send requests to {name}", src=StringIO(node_line(endpoint)), dest=written[-1],
                user="root", group="root", mode="644")
    # A node taken out of the inventory leaves the upstream by a graceful reload: requests it
    # is serving finish first. The directory's change is what the reload sees.
    only_entries(name="Take web nodes no longer in the inventory out of the upstream",
                 directory=settings.proxy_nodes_dir,
                 keep=[path.rsplit("/", 1)[1] for path in written if path.startswith(settings.proxy_nodes_dir)])
    written += [settings.proxy_nodes_dir, settings.proxy_site_path]
    kit.template("nginx/omero-proxy.conf.j2", settings.proxy_site_path, **site_values(settings))
    nginx.checked(settings, written)
    return written


def deploy(settings) -> None:
    # Under maintenance the login page is the maintenance page (503): that is what to wait for.
    nginx.start(settings, configure(settings), check_path="/webclient/login/",
                check_status=503 if settings.proxy_maintenance else None)

"""A web farm: a front proxy, three OMERO.web nodes sharing their sessions in Redis,
OMERO.server, PostgreSQL and its standby (systemd, over SSH; the README's "Several hosts").

proxy.lab answers browsers (HTTPS, caches, the maintenance page) and spreads requests over
the web nodes, which admit it alone; the site's options (names, HTTPS) are the proxy's, so
they are given to every host here. Each host's omero_address is the IP address the others
reach it by: the web nodes admit the proxy by its address.
"""

_ssh = {"ssh_user": "admin", "_sudo": True}
_site = {
    "omero_nginx_server_name": "omero.lab.example.org",
    "omero_nginx_tls_certificate": "/etc/ssl/lab/omero.lab.example.org.fullchain.pem",
    "omero_nginx_tls_key": "/etc/ssl/lab/omero.lab.example.org.key",
}
_artifacts = {
    "omero_server_artifact": "https://downloads.example.org/omero/OMERO.server-5.6.16-ice36.zip",
    "omero_server_sha256": "<sha256 of the zip>",
    "omero_ice_artifact": "https://downloads.example.org/ice/Ice-3.6.5-debian12-x86_64.tar.gz",
    "omero_ice_sha256": "<sha256 of the tarball>",
}

omero_proxy = [("proxy.lab.example.org", {
    **_ssh, **_site, "omero_address": "10.0.10.10",
    # Thumbnails and rendered images are cached per OMERO.web session; a site whose every
    # image is public may share them across users instead:
    # "omero_proxy_cache_shared": True,
    "omero_proxy_cache_images_size": "20g",
    # During an upgrade of OMERO.server: every request answered with the maintenance page.
    # "omero_proxy_maintenance": True,
})]
omero_web = [(f"web{n}.lab.example.org", {**_ssh, **_site, "omero_address": f"10.0.10.{10 + n}"})
             for n in (1, 2, 3)]
omero_server = [("omero.lab.example.org", {**_ssh, **_artifacts, "omero_address": "10.0.10.20"})]
omero_database = [("db.lab.example.org", {**_ssh, "omero_address": "10.0.10.30"})]

# OMERO.web's sessions, shared by the web nodes (which alone may reach it):
omero_redis = [("redis.lab.example.org", {**_ssh, "omero_address": "10.0.10.40"})]
# A copy of the database, streamed as it is written, ready to take over (docs/standby.md):
omero_database_standby = [("standby.lab.example.org", {**_ssh, "omero_address": "10.0.10.31"})]

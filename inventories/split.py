"""Database on its own host; OMERO.server and OMERO.web on theirs (systemd, over SSH).

The server finds PostgreSQL, and the web finds the server, through these groups:
PostgreSQL listens on db.lab's address and admits only the server host.
"""

_artifacts = {
    "omero_server_artifact": "https://downloads.example.org/omero/OMERO.server-5.6.16-ice36.zip",
    "omero_server_sha256": "<sha256 of the zip>",
    "omero_ice_artifact": "https://downloads.example.org/ice/Ice-3.6.5-rhel9-x86_64.tar.gz",
    "omero_ice_sha256": "<sha256 of the tarball>",
}

omero_database = [("db.lab.example.org", {"ssh_user": "admin", "_sudo": True})]
omero_server = [("omero.lab.example.org", {"ssh_user": "admin", "_sudo": True, **_artifacts})]
omero_web = [("web.lab.example.org", {"ssh_user": "admin", "_sudo": True,
                                      "omero_nginx_server_name": "web.lab.example.org"})]

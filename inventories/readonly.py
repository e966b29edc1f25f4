"""Read-only OMERO.server nodes behind a TCP balancer, as the Image Data Resource runs them
(README "Read-only servers"; systemd hosts over SSH).

The read-write server exports its repository over NFS to ro1 and ro2 alone; they mount it
read-only and reach PostgreSQL as it does. haproxy on ice.lab balances Ice over them, and
OMERO.web offers them (through ice.lab) after the read-write server.
"""

_ssh = {"ssh_user": "admin", "_sudo": True}
_artifacts = {
    "omero_server_artifact": "https://downloads.example.org/omero/OMERO.server-5.6.16-ice36.zip",
    "omero_server_sha256": "<sha256 of the zip>",
    "omero_ice_artifact": "https://downloads.example.org/ice/Ice-3.6.5-ubuntu2404-x86_64.tar.gz",
    "omero_ice_sha256": "<sha256 of the tarball>",
}
# NFS checks the repository's group by number: the same on every server.
_servers = {**_ssh, **_artifacts, "omero_group_gid": 546}

omero_database = [("db.lab.example.org", _ssh)]
omero_server = [("omero.lab.example.org", _servers)]
omero_server_readonly = [("ro1.lab.example.org", _servers), ("ro2.lab.example.org", _servers)]
omero_ice_balancer = [("ice.lab.example.org", _ssh)]
omero_web = [("web.lab.example.org", {**_ssh, "omero_nginx_server_name": "web.lab.example.org"})]

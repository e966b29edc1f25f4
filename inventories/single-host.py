"""All-in-one over SSH: PostgreSQL, OMERO.server and OMERO.web on one VM (systemd).

    scripts/deploy inventories/single-host.py

The OMERO.server zip and the Ice binaries come from the site (downloads from OME and
Glencoe, or a local mirror); pin their sha256. Passwords are generated on the first
deploy and kept in ~/.local/share/omero-pyinfra/secrets unless given here or in
$OMERO_DB_PASSWORD / $OMERO_ROOT_PASSWORD.
"""

omero = ("omero.lab.example.org", {
    "ssh_user": "root",
    "omero_server_artifact": "/srv/omero-artifacts/OMERO.server-5.6.16-ice36.zip",
    "omero_server_sha256": "<sha256 of the zip>",
    "omero_ice_artifact": "/srv/omero-artifacts/Ice-3.6.5-ubuntu2404-x86_64.tar.gz",
    "omero_ice_sha256": "<sha256 of the tarball>",
    "omero_nginx_server_name": "omero.lab.example.org",
})

omero_database = [omero]
omero_server = [omero]
omero_web = [omero]

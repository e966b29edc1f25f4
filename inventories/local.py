"""This machine as an OMERO.web front-end with its database (no server yet):

    sudo scripts/deploy inventories/local.py

Point the web at an existing OMERO.server with omero_web_server_host.
"""

omero_database = ["@local"]
omero_web = [("@local", {"omero_web_server_host": "omero.lab.example.org"})]

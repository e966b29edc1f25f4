"""The part of an omero_server host that needs no OMERO artifact and holds OMERO.dropbox's
directory: the server user, the shared group and the data directories, as deploy.py makes
them (deploys.server).

Run by test_dropbox.py with the same inventory form as deploy.py.
"""

from pyinfra import host, inventory
from pyinfra.facts.server import LinuxDistribution

from deploys import platform, server, settings
from deploys.users import omero_user
from facts.omero import InitSystem

config = settings.load(host, inventory, platform.detect(host.get_fact(LinuxDistribution)),
                       pid1=host.get_fact(InitSystem))
omero_user(config, config.server_user, shared_group=True)
server.data_directories(config)

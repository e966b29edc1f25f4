"""The part of an omero_server host that needs no OMERO artifact: its packages, Java among them.

Run by test_java.py with the same inventory form as deploy.py.
"""

from pyinfra import host, inventory
from pyinfra.facts.server import LinuxDistribution

from deploys import kit, packages, platform, settings
from facts.omero import InitSystem

config = settings.load(host, inventory, platform.detect(host.get_fact(LinuxDistribution)),
                       pid1=host.get_fact(InitSystem))
kit.packages(config, "Install the OMERO.server packages", packages.server_packages(config),
             crb=["libdb-cxx for Ice"])

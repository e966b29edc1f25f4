"""The part of an omero_server host that needs no OMERO artifact: Java.

Run by test_java.py with the same inventory form as deploy.py.
"""

from pyinfra import host, inventory
from pyinfra.facts.server import LinuxDistribution

from deploys import platform, prerequisites, settings
from facts.omero import InitSystem

config = settings.load(host, inventory, platform.detect(host.get_fact(LinuxDistribution)),
                       pid1=host.get_fact(InitSystem))
prerequisites.install_java(config)

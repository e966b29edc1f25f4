"""Stand up OMERO on the hosts of an inventory: `pyinfra inventories/<site>.py deploy.py`.

A host gets what its groups say: omero_database (PostgreSQL), omero_server
(OMERO.server), omero_web (OMERO.web behind nginx); one host in all three is the
all-in-one install. A host in omero_backup keeps the others' backups (docs/backup.md); one
in omero_analysis (and omero_web) serves JupyterHub on the web's site (docs/analysis.md).
Every option is validated for every host before anything changes.
"""

from pyinfra import host, inventory
from pyinfra.facts.server import LinuxDistribution

from deploys import analysis, backup, checks, database, nginx, platform, prerequisites, server, settings, web
from deploys.readonly_hosts import balancer
from deploys.topology import ANALYSIS, BACKUP, BALANCER, DATABASE, READONLY, SERVER, WEB
from facts.omero import Accounts, DirectoryOwners, InitSystem

config = settings.load(
    host,
    inventory,
    platform.detect(host.get_fact(LinuxDistribution)),
    pid1=host.get_fact(InitSystem),
)
backup_host = BACKUP in host.groups
checks.check_host(
    config, host.name, backup_host,
    accounts=host.get_fact(Accounts, names=tuple(checks.host_accounts(config, backup_host).values())),
    directories=host.get_fact(DirectoryOwners, paths=tuple(checks.host_directories(config, backup_host).values())),
)

prerequisites.install(config)
# The backup host is ready before any OMERO host creates its repository there.
if backup_host:
    backup.target(config)
# Start order across the inventory: PostgreSQL ready, then OMERO.server accepting
# connections, then OMERO.web, then JupyterHub, then nginx (pyinfra runs operations in
# this order): nginx serves what runs behind it.
if DATABASE in config.roles:
    database.deploy(config)
# Backups are configured before the server: an upgrade keeps its dump in the repositories.
backup_sources = backup.configure(config) if config.backs_up else []
# Read-only servers (README "Read-only servers") follow the read-write one's steps, which
# come first in each (its export before their mounts, its schema upgrade before their start).
if config.roles & {SERVER, READONLY}:
    server.deploy(config)
if BALANCER in config.roles:
    balancer(config)
if WEB in config.roles:
    web.deploy(config)
    if ANALYSIS in config.roles:
        analysis.deploy(config)
    nginx.deploy(config)
if config.backs_up:
    backup.schedule(config, backup_sources)

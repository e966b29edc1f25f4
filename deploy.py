"""Stand up OMERO on the hosts of an inventory: `pyinfra inventories/<site>.py deploy.py`.

A host gets what its groups say: omero_database (PostgreSQL), omero_server
(OMERO.server), omero_web (OMERO.web behind nginx); one host in all three is the
all-in-one install. A host in omero_backup keeps the others' backups (docs/backup.md); one
in omero_analysis (and omero_web) serves JupyterHub on the web's site (docs/analysis.md); one in
omero_proxy is the front of several omero_web hosts (the README's "Several hosts"); one in
omero_redis keeps the web nodes' shared sessions.
Every option is validated for every host before anything changes.
"""

import sys
from types import ModuleType

from pyinfra import host, inventory
from pyinfra.facts.hardware import Cpus
from pyinfra.facts.server import LinuxDistribution

from deploys import (
    analysis,
    backup,
    checks,
    database,
    nginx,
    packages,
    platform,
    prerequisites,
    proxy,
    readonly_hosts,
    redis,
    replication,
    server,
    settings,
    web,
)
from deploys.batched import ask, prefetch
from deploys.operations import barrier
from deploys.topology import ANALYSIS, BACKUP, BALANCER, DATABASE, PROXY, READONLY, REDIS, SERVER, STANDBY, WEB
from facts.omero import Accounts, DirectoryOwners, HostAddresses, InitSystem

# pyinfra orders operations from the call stack, and inspect looks up each frame's module by
# its file: a file that is no module (this one, which pyinfra runs) costs a scan of every
# loaded module, once per operation. Known as a module, it is found at once.
deploy_file = ModuleType("omero_pyinfra_deploy_file")
deploy_file.__file__ = __file__
sys.modules.setdefault(deploy_file.__name__, deploy_file)

# What the deploy branches on, asked in two round trips (the second's questions follow from the first).
distribution, pid1 = ask((LinuxDistribution, {}), (InitSystem, {}))
config = settings.load(host, inventory, platform.detect(distribution), pid1=pid1)
backup_host = BACKUP in host.groups
accounts, directories, _, _ = ask(
    (Accounts, {"names": tuple(checks.host_accounts(config, backup_host).values())}),
    (DirectoryOwners, {"paths": tuple(checks.host_directories(config, backup_host).values())}),
    (Cpus, {}), (HostAddresses, {}),  # kept for web and nginx
)
checks.check_host(config, host.name, backup_host, accounts=accounts, directories=directories)

prerequisites.install(config, packages.needed(config, backup_host))
# The backup host is ready before any OMERO host creates its repository there.
if backup_host:
    backup.target(config)
# Start order across the inventory: PostgreSQL ready, then OMERO.server accepting
# connections, then OMERO.web, then JupyterHub, then nginx (pyinfra runs operations in
# this order; across hosts, only where they share an operation): nginx serves what runs
# behind it; the front proxy last, over web nodes that serve already.
if DATABASE in config.roles:
    database.deploy(config)
    replication.primary(config)
# A standby copies the primary once its role and slot exist; the primary waits for it at each
# commit (when synchronous) only once it runs. pyinfra orders each host's operations, not one
# host's against another's: an operation both hosts reach from the same line is the meeting point.
if STANDBY in config.roles:
    replication.prepare_standby(config)
if config.standby_slot:
    barrier(name="The primary ready for its standby", what="the primary and its standby are there")
if STANDBY in config.roles:
    replication.follow(config)
if config.standby_slot:
    barrier(name="The standby running", what="the standby is running")
if DATABASE in config.roles:
    replication.synchronous(config)
# Redis before the web nodes, whose sessions it keeps.
if REDIS in config.roles:
    redis.deploy(config)
# Backups are configured before the server: an upgrade keeps its dump in the repositories.
backup_sources = backup.configure(config) if config.backs_up else []
# Read-only servers (README "Read-only servers") follow the read-write one's steps, which
# come first in each (its export before their mounts, its schema upgrade before their start).
if config.roles & {SERVER, READONLY}:
    server.deploy(config)
if BALANCER in config.roles:
    readonly_hosts.balancer(config)
if WEB in config.roles:
    web.deploy(config)
    if ANALYSIS in config.roles:
        analysis.deploy(config)
    nginx.deploy(config)
if inventory.get_group(PROXY, []):
    # The same on every host, so pyinfra runs the proxy's operations after every web node's:
    # a node joins the upstream once it serves.
    barrier(name="Wait until every web node serves", what="the web nodes are deployed")
if PROXY in config.roles:
    proxy.deploy(config)
if config.backs_up:
    backup.schedule(config, backup_sources)
# Everything this host's operations will ask is named: asked now, while the others are planned.
prefetch()

"""A read-only cluster's operations (what and why: deploys/readonly.py): the read-write
server's NFS export, the read-only servers' mount, the balancer's haproxy. systemd only
(checked in readonly.cluster)."""

import shlex

from pyinfra import host
from pyinfra.api import operation
from pyinfra.facts.files import File

from . import kit, readonly
from .operations import refreshed, systemd_reloaded, systemd_running

EXPORTS = "/etc/exports.d/omero.exports"
HAPROXY_CFG = "/etc/haproxy/haproxy.cfg"
UNIT_DIR = "/etc/systemd/system"


def export(settings) -> None:
    """On the read-write server: ``omero_data_dir`` exported read-only to the read-only
    servers' addresses alone."""
    kit.packages(settings, "Install the NFS server",
                 ["nfs-kernel-server" if settings.platform.is_debian else "nfs-utils"])
    kit.directory(name="Create /etc/exports.d", path="/etc/exports.d", user="root", group="root", mode="755")
    kit.template("readonly/omero.exports.j2", EXPORTS,
                 line=readonly.export_line(settings.data_dir, settings.readonly_clients))
    # The kernel's NFS server (nfs-server.service on Debian, Ubuntu and RHEL), started at boot.
    systemd_running(name="Run and enable the NFS server", service="nfs-server", restart_sources=[],
                    stamp=settings.stamp("nfs-server-started"))
    # exportfs applies a changed list to the running server: no restart, mounts stay.
    refreshed(name="Apply the repository's NFS export", commands=["exportfs -ra"], sources=[EXPORTS],
              stamp=settings.stamp("nfs-exported"))


@operation()
def not_exported(exports: str):
    """No export left behind once the inventory has no read-only server: ``exports`` removed
    and the kernel's list made anew (``exportfs`` is there since the export was)."""
    if not host.get_fact(File, path=exports):
        host.noop(f"{exports} is absent")
        return
    yield f"rm -f {shlex.quote(exports)} && exportfs -ra"


def mount(settings) -> None:
    """On a read-only server: the read-write server's repository mounted read-only at
    ``omero_data_dir``, at boot too (a systemd mount unit; systemd makes the mount point)."""
    kit.packages(settings, "Install the NFS client", ["nfs-common" if settings.platform.is_debian else "nfs-utils"])
    unit = readonly.mount_unit(settings.data_dir)
    unit_file = f"{UNIT_DIR}/{unit}"
    kit.template("readonly/repository.mount.j2", unit_file, data_dir=settings.data_dir,
                 source=readonly.mount_source(settings.readonly_source, settings.data_dir),
                 options=readonly.MOUNT_OPTIONS)
    systemd_reloaded(name=f"Reload systemd's {unit}", units=[unit], files=[unit_file])
    # A changed unit remounts; omero-server, which requires the mount, is restarted with it.
    systemd_running(name="Mount the repository read-only", service=unit.removesuffix(".mount"), kind="mount",
                    restart_sources=[unit_file], stamp=settings.stamp("repository-mounted"))
    # Bio-Formats memo files: the node's own (readonly.config), in the server user's home.
    kit.directory(name="Create the read-only server's Bio-Formats memo directory", path=settings.server_memo_dir,
                  user=settings.server_user, group=settings.server_user, mode="700")


def balancer(settings) -> None:
    """On the balancer: haproxy (the distribution's) on Ice's port, over the read-only servers."""
    kit.packages(settings, "Install haproxy", ["haproxy"])
    kit.template("readonly/haproxy.cfg.j2", HAPROXY_CFG, port=readonly.ICE_PORT,
                 timeout=settings.ice_balancer_timeout,
                 servers=[readonly.haproxy_server(address) for address in settings.balanced_servers])
    stamp = settings.stamp("haproxy-reloaded")
    # A bad configuration stops the deploy before haproxy loads it, on every run until fixed.
    refreshed(name="Check the haproxy configuration", commands=[f"haproxy -c -q -f {HAPROXY_CFG}"],
              sources=[HAPROXY_CFG], stamp=stamp, touch=False)
    # Its unit is Type=notify: started means listening.
    systemd_running(name="Run and enable haproxy", service="haproxy", restart_sources=[],
                    stamp=settings.stamp("haproxy-started"))
    # A reload: connections in flight stay with the old process until they close.
    refreshed(name="Reload haproxy for its new configuration", commands=["systemctl reload haproxy"],
              sources=[HAPROXY_CFG], stamp=stamp)

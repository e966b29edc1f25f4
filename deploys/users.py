"""The OMERO service users: each with its own group; only those that write the binary
repository also in the shared OMERO group (in-place import)."""

import shlex

from pyinfra import host
from pyinfra.api import OperationError, operation
from pyinfra.facts.server import Command

from . import kit, system_operations
from .operations import not_in_group


def omero_user(settings, user: str, *, shared_group: bool) -> None:
    """``user`` with a group of its own; in ``settings.group`` too when ``shared_group``
    (OMERO.server: ManagedRepository is group-writable). The internet-facing web user is
    not: it has no business writing the repository."""
    shared = [settings.group] if shared_group else []
    if shared and settings.group_gid is not None:
        group_numbered(name=f"Check the group {settings.group} is number {settings.group_gid}",
                       group=settings.group, gid=settings.group_gid)
    for group in (*shared, user):
        system_operations.group(name=f"Create the group {group}", group=group, system=True,
                                gid=settings.group_gid if group == settings.group else None)
    system_operations.user(
        name=f"Create the user {user}", user=user, group=user, groups=shared,
        system=True, home=settings.home_of(user), shell="/usr/sbin/nologin",
    )
    # The CLI's sessions and temporary files, the server's .pgpass and certificates: its own.
    kit.directory(name=f"Keep {user}'s home its own", path=settings.home_of(user), user=user, group=user,
                  mode="700")
    if not shared_group:
        # Earlier deploys put the web user in the shared group.
        not_in_group(name=f"Take {user} out of the group {settings.group}", user=user, group=settings.group)


def as_user(user: str) -> dict:
    """Global arguments running an operation as a service user (``omero`` refuses root)."""
    return {"_su_user": user, "_su_shell": "/bin/sh"}


@operation()
def group_numbered(group: str, gid: int):
    """``group``, where it exists, has the number ``gid`` (``omero_group_gid``): NFS checks the
    shared repository's group by number. Renumbering a group means chgrp of its files: the
    sysadmin's decision, so the deploy stops here instead."""
    entry = host.get_fact(Command, command=f"getent group {shlex.quote(group)} || true")
    fields = (entry or "").split(":")
    if len(fields) >= 3 and fields[2] != str(gid):
        raise OperationError(f"the group {group} exists with the number {fields[2]}, not omero_group_gid's {gid}: "
                             f"renumber it (groupmod -g {gid} {group}, then chgrp what it owns) or set "
                             f"omero_group_gid to {fields[2]} on every server host")
    host.noop(f"the group {group} is absent or number {gid}")
    yield from ()  # nothing to change: an operation is a generator

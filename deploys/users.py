"""The OMERO service users: each with its own group; only those that write the binary
repository also in the shared OMERO group (in-place import)."""

from pyinfra.operations import server

from . import kit
from .operations import not_in_group


def omero_user(settings, user: str, *, shared_group: bool) -> None:
    """``user`` with a group of its own; in ``settings.group`` too when ``shared_group``
    (OMERO.server: ManagedRepository is group-writable). The internet-facing web user is
    not: it has no business writing the repository."""
    shared = [settings.group] if shared_group else []
    for group in (*shared, user):
        server.group(name=f"Create the group {group}", group=group, system=True)
    server.user(
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

"""The OMERO service users: each with its own group, all in the shared OMERO group."""

from pyinfra.operations import server


def omero_user(settings, user: str) -> None:
    for group in (settings.group, user):
        server.group(name=f"Create the group {group}", group=group, system=True)
    server.user(
        name=f"Create the user {user}", user=user, group=user, groups=[settings.group],
        system=True, home=f"/var/lib/{user}", shell="/usr/sbin/nologin",
    )


def as_user(user: str) -> dict:
    """Global arguments running an operation as a service user (``omero`` refuses root)."""
    return {"_su_user": user, "_su_shell": "/bin/sh"}

"""pyinfra's server.group, server.user, apt.packages and dnf.packages, decided from the
host's batched facts (deploys/batched.py) when nothing is to change (or, for a group or an
account, when it is new); otherwise pyinfra's own operation decides and sends the commands. Each
pyinfra operation asks its facts itself (every account, the groups, the OS, the package
list, apt's cache age): a run that changes nothing asks none of them."""

from pyinfra import host
from pyinfra.api import QuoteString, StringCommand, operation
from pyinfra.facts.deb import DebPackages
from pyinfra.facts.rpm import RpmPackages
from pyinfra.facts.server import Groups
from pyinfra.operations import apt, dnf, server

from facts.omero import UserAccount
from facts.paths import PathStates

from .batched import asks, fact, path_state
from .chained import chaining


@asks(lambda **_: [(Groups, {})])
@operation()
def group(group: str, system: bool = False, gid: int | None = None):
    """server.group: ``group`` present (made with ``gid`` when given; an existing group is
    not renumbered, as server.group does not)."""
    if group in fact(Groups):
        host.noop(f"group {group} exists")
        return
    # What server.group sends on Linux, without the facts it asks first (the groups, the OS).
    yield StringCommand("groupadd", *(["-r"] if system else []), QuoteString(group),
                        *(["--gid", QuoteString(str(gid))] if gid else []))


def _user_facts(user, home=None, ensure_home=True, **_):
    return [(UserAccount, {"user": user}), *([(PathStates, {"path": home})] if ensure_home and home else [])]


@asks(_user_facts)
@operation()
@chaining
def user(user: str, group: str, home: str, shell: str, groups: tuple[str, ...] = (), system: bool = False,
         ensure_home: bool = True):
    """server.user: ``user`` with exactly these home, shell, primary ``group`` and secondary
    ``groups``; with ``ensure_home``, its home a directory it and ``group`` own."""
    current = fact(UserAccount, user=user)
    if current is None:
        # What server.user sends for a new account, without the facts it asks first (every
        # account on the host, the groups, the OS).
        yield StringCommand("useradd", "-d", QuoteString(home), "-s", QuoteString(shell), "-g", QuoteString(group),
                            *(["-G", QuoteString(",".join(groups))] if groups else []), *(["-r"] if system else []),
                            "-M", QuoteString(user))
        if ensure_home:
            yield StringCommand("mkdir", "-p", QuoteString(home))
            yield StringCommand("chown", QuoteString(f"{user}:{group}"), QuoteString(home))
        return
    settled = (current["home"] == home and current["shell"] == shell and current["group"] == group
               and set(current["groups"]) == set(groups))
    if settled and ensure_home:
        home_state = path_state(home)
        settled = (home_state is not None and home_state["type"] == "directory"
                   and (home_state["user"], home_state["group"]) == (user, group))
    if settled:
        host.noop(f"user {user} exists as wanted")
        return
    yield from server.user._inner(user=user, group=group, groups=list(groups), system=system, home=home,
                                  shell=shell, ensure_home=ensure_home)


@asks(lambda **_: [(DebPackages, {})])
@operation()
@chaining
def apt_packages(packages: list[str], update: bool = False, cache_time: int | None = None):
    """apt.packages without recommended packages; the lists refreshed (``update``, when
    older than ``cache_time`` seconds) only when a package is to be installed."""
    installed = fact(DebPackages)
    if all(name in installed for name in packages):
        host.noop(f"{', '.join(packages)} installed")
        return
    yield from apt.packages._inner(packages=packages, update=update, cache_time=cache_time, no_recommends=True)


@asks(lambda **_: [(RpmPackages, {})])
@operation()
@chaining
def dnf_packages(packages: list[str]):
    """dnf.packages."""
    installed = fact(RpmPackages)
    if all(name in installed for name in packages):
        host.noop(f"{', '.join(packages)} installed")
        return
    yield from dnf.packages._inner(packages=packages)

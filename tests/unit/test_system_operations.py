"""pyinfra's user, group and package operations decided from the batched facts
(deploys/system_operations.py): nothing to change is a no-op asking nothing else; anything
to change is pyinfra's own operation, given the same arguments."""

import pytest
from pyinfra.operations import apt, dnf, server

from deploys import system_operations as system_ops

pytestmark = pytest.mark.unit

HOME = {"type": "directory", "user": "omero-web", "group": "omero-web", "mode": 700, "sha256": None}
ACCOUNT = {"home": "/var/lib/omero-web", "shell": "/usr/sbin/nologin", "group": "omero-web", "groups": []}


@pytest.fixture
def pyinfras(monkeypatch):
    """pyinfra's operations, replaced by one yielding what it was asked to do."""
    calls = []

    def stand_in(operation):
        def inner(**kwargs):
            calls.append((operation, kwargs))
            yield f"{operation} decides"
        return inner

    for module, name in ((server, "user"), (server, "group"), (apt, "packages"), (dnf, "packages")):
        monkeypatch.setattr(getattr(module, name), "_inner", stand_in(f"{module.__name__.split('.')[-1]}.{name}"))
    return calls


def test_group_there_is_a_no_op(run_op, pyinfras):
    run = run_op(system_ops.group, {"Groups": ["omero", "adm"]}, "omero", system=True, gid=1234)
    assert run.commands == [] and pyinfras == [] and run.noops == ["group omero exists"]


@pytest.mark.parametrize("kwargs", [
    pytest.param({"system": True, "gid": 1234}, id="a numbered system group"),
    pytest.param({}, id="a plain group"),
])
def test_new_group_made_as_server_group_makes_it(run_op, kwargs):
    ours = run_op(system_ops.group, {"Groups": ["adm"]}, "my lab", **kwargs)
    pyinfras = run_op(server.group, {"Groups": ["adm"], "Os": "Linux"}, "my lab", **kwargs)
    assert ours.commands == pyinfras.commands and len(ours.commands) == 1
    assert [name for name, _ in ours.fact_calls] == ["Groups"]


@pytest.mark.parametrize(("account", "home", "delegated"), [
    pytest.param(ACCOUNT, HOME, False, id="as wanted"),
    pytest.param({**ACCOUNT, "home": "/home/omero-web"}, HOME, True, id="another home"),
    pytest.param({**ACCOUNT, "shell": "/bin/bash"}, HOME, True, id="a login shell"),
    pytest.param({**ACCOUNT, "group": "users"}, HOME, True, id="another primary group"),
    pytest.param({**ACCOUNT, "groups": ["omero"]}, HOME, True, id="a secondary group too many"),
    pytest.param(ACCOUNT, None, True, id="no home directory"),
    pytest.param(ACCOUNT, {**HOME, "user": "root"}, True, id="a home it does not own"),
    pytest.param(ACCOUNT, {**HOME, "type": "link"}, True, id="a link for a home"),
])
def test_user(run_op, pyinfras, account, home, delegated):
    run = run_op(system_ops.user, {"UserAccount": lambda user: account, "PathStates": {"/var/lib/omero-web": home}},
                 "omero-web", "omero-web", "/var/lib/omero-web", "/usr/sbin/nologin", system=True)
    wanted = {"user": "omero-web", "group": "omero-web", "groups": [], "system": True, "home": "/var/lib/omero-web",
              "shell": "/usr/sbin/nologin", "ensure_home": True}
    assert pyinfras == ([("server.user", wanted)] if delegated else [])
    assert run.commands == (["server.user decides"] if delegated else [])


@pytest.mark.parametrize(("kwargs", "commands"), [
    pytest.param({"system": True}, [
        "useradd -d /var/lib/omero-web -s /usr/sbin/nologin -g omero-web -r -M omero-web",
        "mkdir -p /var/lib/omero-web", "chown omero-web:omero-web /var/lib/omero-web"], id="a system account"),
    pytest.param({"groups": ("omero", "my lab"), "ensure_home": False}, [
        "useradd -d /var/lib/omero-web -s /usr/sbin/nologin -g omero-web -G 'omero,my lab' -M omero-web"],
        id="in other groups, its home left alone"),
])
def test_new_user_made_as_server_user_makes_it(run_op, pyinfras, kwargs, commands):
    run = run_op(system_ops.user, {"UserAccount": None}, "omero-web", "omero-web", "/var/lib/omero-web",
                 "/usr/sbin/nologin", **kwargs)
    assert run.commands == commands and pyinfras == []


def test_user_without_ensure_home_leaves_the_home_alone(run_op, pyinfras):
    # The backup host's accounts: their chroot is root's.
    run = run_op(system_ops.user, {"UserAccount": {**ACCOUNT, "home": "/srv/backup/lab", "group": "omero-backup"}},
                 "omero-web", "omero-backup", "/srv/backup/lab", "/usr/sbin/nologin", ensure_home=False)
    assert pyinfras == [] and run.noops == ["user omero-web exists as wanted"]
    assert [name for name, _ in run.fact_calls] == ["UserAccount"]


@pytest.mark.parametrize(("installed", "delegated"), [
    pytest.param({"nginx": ["1.22"], "openssl": ["3.0"]}, False, id="all installed"),
    pytest.param({"nginx": ["1.22"]}, True, id="one missing"),
])
def test_apt_packages(run_op, pyinfras, installed, delegated):
    run = run_op(system_ops.apt_packages, {"DebPackages": installed}, ["nginx", "openssl"], update=True,
                 cache_time=3600)
    wanted = {"packages": ["nginx", "openssl"], "update": True, "cache_time": 3600, "no_recommends": True}
    assert pyinfras == ([("apt.packages", wanted)] if delegated else [])
    assert run.noops == ([] if delegated else ["nginx, openssl installed"])


@pytest.mark.parametrize(("installed", "delegated"), [
    pytest.param({"nginx": ["1.20"]}, False, id="installed"),
    pytest.param({}, True, id="missing"),
])
def test_dnf_packages(run_op, pyinfras, installed, delegated):
    run_op(system_ops.dnf_packages, {"RpmPackages": installed}, ["nginx"])
    assert pyinfras == ([("dnf.packages", {"packages": ["nginx"]})] if delegated else [])

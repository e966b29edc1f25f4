"""Rolling restarts behind the front proxy (deploys/rolling.py): when a node restarts, and
each node's turn (drained on every proxy, restarted, checked, put back), with fake hosts
answering the shell commands a turn sends."""

from types import SimpleNamespace

import pytest
from pyinfra.connectors.util import CommandOutput, OutputLine

from deploys import rolling
from deploys.proxy import node_line

pytestmark = pytest.mark.unit

STAMP = "/var/lib/omero-pyinfra/omero-web-started.done"
CONFIG = "/opt/omero/web/config/01-omero-web.omero"
NODE_FILE = "/etc/nginx/omero-proxy-nodes/web1.conf"
ARGS = dict(service="omero-web", manager="systemd", supervisor_conf="/etc/supervisor/supervisord.conf",
            restart_sources=[CONFIG], stamp=STAMP, proxies=["proxy"], node_file=NODE_FILE,
            endpoint="10.0.0.11:80", check="curl -fs http://127.0.0.1:4080/webclient/login/")


@pytest.mark.parametrize(("running", "changed", "rolled"), [
    pytest.param(True, [CONFIG], True, id="running, its configuration newer: its turn"),
    pytest.param(True, [], False, id="running what is on disk"),
    pytest.param(False, [CONFIG], False, id="not running: services.start starts it"),
])
def test_restarted_when_running_and_changed(run_op, running, changed, rolled):
    facts = {"SystemdUnits": {"omero-web.service": {"running": running}}, "ChangedSince": changed}
    run = run_op(rolling.restarted, facts, **ARGS)
    if not rolled:
        assert run.commands == [] and len(run.noops) == 1
        return
    assert run.commands == [
        ("call", "_roll", (["proxy"], NODE_FILE, "10.0.0.11:80",
                           [("restart", "systemctl restart omero-web.service"), ("check", ARGS["check"])])),
        f"touch {STAMP}"]


def test_restarted_under_supervisord(run_op):
    facts = {"SupervisorPrograms": {"omero-web": "RUNNING"}, "ChangedSince": [CONFIG]}
    run = run_op(rolling.restarted, facts, **{**ARGS, "manager": "supervisord"})
    restart = "supervisorctl -c /etc/supervisor/supervisord.conf restart omero-web"
    assert run.commands[0][2][3][0] == ("restart", restart)


VENV = "/opt/omero/web/venv3"
UPGRADE = dict(service="omero-web", manager="systemd", supervisor_conf="/etc/supervisor/supervisord.conf",
               virtualenv=VENV, packages=["omero-web==5.33.2", "omero-py==5.23.0", "gunicorn"],
               collect="collect-static", stamp=STAMP, proxies=["proxy"], node_file=NODE_FILE,
               endpoint="10.0.0.11:80", check="check-login")


@pytest.mark.parametrize(("running", "installed", "changing"), [
    pytest.param(True, {"omero-web": "5.29.2", "omero-py": "5.23.0", "gunicorn": "23.0.0"}, ["omero-web==5.33.2"],
                 id="running an older omero-web: its turn, installing that alone"),
    pytest.param(True, {"omero-py": "5.23.0"}, ["omero-web==5.33.2"], id="a pinned package missing: its turn"),
    pytest.param(True, {"omero-web": "5.33.2", "omero-py": "5.23.0"}, [],
                 id="the pinned releases (an unpinned one is the install's)"),
    pytest.param(False, {"omero-web": "5.29.2"}, [], id="not running: the deploy's own install"),
])
def test_upgraded_in_its_turn_when_running_and_a_release_differs(run_op, monkeypatch, running, installed,
                                                                  changing):
    monkeypatch.setattr(rolling, "venv_distributions", lambda venv: installed if venv == VENV else {})
    run = run_op(rolling.upgraded, {"SystemdUnits": {"omero-web.service": {"running": running}}}, **UPGRADE)
    if not changing:
        assert run.commands == [] and len(run.noops) == 1
        return
    assert run.commands == [
        ("call", "_roll", (["proxy"], NODE_FILE, "10.0.0.11:80", [
            ("install", f"{VENV}/bin/pip install {' '.join(changing)}"), ("static files", "collect-static"),
            ("restart", "systemctl restart omero-web.service"), ("check", "check-login")])),
        f"touch {STAMP}"]


class Target:
    """A host of the run: records what it is sent, fails the commands containing ``failing``."""

    def __init__(self, name: str, log: list, failing: str | None = None):
        self.name, self.log, self.failing = name, log, failing
        self.data = {"_sudo": True}
        self.errors: list[str] = []

    def run_shell_command(self, command, **arguments):
        text = command.get_raw_value()
        self.log.append((self.name, text, arguments))
        ok = not (self.failing and self.failing in text)
        return ok, CommandOutput([OutputLine("stderr", "it broke")] if not ok else [])

    def log_styled(self, message, **kwargs):
        self.errors.append(message)


class State:
    """A run: its inventory's hosts by name (weakly referable, as pyinfra's State is)."""

    def __init__(self, hosts: dict):
        self.inventory = SimpleNamespace(get_host=hosts.get)


def turn(hosts: dict, node: Target, state) -> bool:
    return rolling._roll(state, node, list(hosts), f"/etc/nginx/omero-proxy-nodes/{node.name}.conf",
                         "10.0.0.11:80", [("restart", "systemctl restart omero-web.service"), ("check", "check-login")])


def test_a_turn_drains_on_every_proxy_restarts_checks_and_puts_back():
    log = []
    proxies = {name: Target(name, log) for name in ("proxy1", "proxy2")}
    state = State(proxies)
    node = Target("web1", log)
    assert turn(proxies, node, state)
    assert [name for name, _, _ in log] == ["proxy1", "proxy2", "web1", "web1", "proxy1", "proxy2"]
    assert [text for name, text, _ in log if name == "web1"] == ["systemctl restart omero-web.service", "check-login"]
    down, up = node_line("10.0.0.11:80", down=True), node_line("10.0.0.11:80")
    assert all(down.strip() in text for _, text, _ in log[:2]) and all(up.strip() in text for _, text, _ in log[4:])
    # Only where the proxy lists the node already; a graceful reload; with each host's sudo.
    assert all(text.startswith("test ! -e /etc/nginx/omero-proxy-nodes/web1.conf || ") for _, text, _ in log[:2])
    assert all("nginx -s reload" in text for _, text, _ in log[:2] + log[4:])
    assert all(arguments == {"_sudo": True} for _, _, arguments in log)


def test_a_failed_restart_leaves_the_node_drained_and_the_others_untouched():
    log = []
    proxies = {"proxy": Target("proxy", log)}
    state = State(proxies)
    broken, other = Target("web1", log, failing="check-login"), Target("web2", log)
    assert not turn(proxies, broken, state)
    assert [name for name, _, _ in log] == ["proxy", "web1", "web1"]  # drained, restarted, check failed
    assert "stays drained" in broken.errors[0] and "it broke" in broken.errors[0]
    log.clear()
    assert not turn(proxies, other, state)
    assert log == [] and "web1 failed its rolling restart" in other.errors[0]
    # Another run (another State) is not held back by this one's failure.
    assert turn(proxies, Target("web2", log), State(proxies))


def test_a_drain_refused_by_the_proxy_stops_before_the_restart():
    log = []
    proxies = {"proxy": Target("proxy", log, failing="nginx -s reload")}
    state = State(proxies)
    node = Target("web1", log)
    assert not turn(proxies, node, state)
    assert [name for name, _, _ in log] == ["proxy"] and "could not drain web1" in node.errors[0]

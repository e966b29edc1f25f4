"""Rolling changes of OMERO.web behind the front proxy: when a web node's omero-web must
restart (what services.start decides from its restart sources), or its venv must get other
releases, the nodes take turns. Each in turn is drained on every omero_proxy host (its
upstream line rewritten ``down``, nginx reloaded gracefully), changed (the new releases
installed, their static files collected: a running OMERO.web whose code changed on disk under
it answers errors), restarted (gunicorn lets the requests it holds finish), checked (its login
page) and put back.

The turns are taken in the controller: one operation, a Python callback on each web node, and
a lock every node's callback queues for (pyinfra runs an operation on all hosts at once, each
in a greenlet). The proxy hosts are reached through their own connections of this run.
Convergent: a run killed mid-roll leaves a node drained and its restart stamp old; the next
run restarts it again and the proxy's deploy writes every node up.
"""

import shlex
from weakref import WeakKeyDictionary

from gevent.lock import Semaphore
from pyinfra import host, logger
from pyinfra.api import FunctionCommand, QuoteString, StringCommand, operation

from facts.omero import ChangedSince, SupervisorPrograms, SystemdUnits

from . import service_commands
from .batched import asks, fact, facts, venv_distributions
from .proxy import node_line
from .venv_operations import parse

_TURN = Semaphore()  # held by the node restarting; the others wait for it
# Per run (State): the nodes whose restart failed; the rest are then left as they are.
_FAILED: WeakKeyDictionary = WeakKeyDictionary()
# Time for nginx's new workers to take over after a reload (the old ones finish their requests).
_RELOAD_SETTLE = 2


def _run(target, command: str) -> tuple[bool, str]:
    """``command`` on ``target`` (a host of this run), with its sudo settings."""
    become = {key: target.data.get(key) for key in ("_sudo", "_sudo_user") if target.data.get(key)}
    ok, output = target.run_shell_command(StringCommand(command), **become)
    return ok, output.output


def _set_node(proxy, node_file: str, line: str) -> tuple[bool, str]:
    """The node's upstream line on ``proxy`` made ``line``, nginx reloaded; nothing where the
    proxy does not list the node yet (its first deploy, or the node is new)."""
    path = shlex.quote(node_file)
    staged = shlex.quote(f"{node_file}.new")
    return _run(proxy, f"test ! -e {path} || {{ (umask 022 && printf %s {shlex.quote(line)} > {staged}) "
                       f"&& mv -f {staged} {path} && nginx -s reload && sleep {_RELOAD_SETTLE}; }}")


def _roll(state, host, proxies: list[str], node_file: str, endpoint: str, steps: list[tuple[str, str]]) -> bool:
    """``host``'s turn: drained on every proxy, ``steps`` ((name, shell command), in order) run
    on it, put back; False (and said) when any fails, the node then left drained."""
    failed = _FAILED.setdefault(state, [])

    def fail(message: str) -> bool:
        failed.append(host.name)
        host.log_styled(message, fg="red", log_func=logger.error)
        return False

    with _TURN:
        if failed:
            return fail(f"not restarted: {', '.join(failed)} failed its rolling restart in this run, so "
                        "the other web nodes keep what they run; fix it and run the deploy again")
        targets = [state.inventory.get_host(name) for name in proxies]
        for proxy in targets:
            ok, output = _set_node(proxy, node_file, node_line(endpoint, down=True))
            if not ok:
                return fail(f"could not drain {host.name} on the proxy {proxy.name}: {output}")
        for step, command in steps:
            ok, output = _run(host, command)
            if not ok:
                return fail(f"omero-web's {step} failed on {host.name}, which stays drained from the "
                            f"proxy (the next deploy puts it back): {output}")
        for proxy in targets:
            ok, output = _set_node(proxy, node_file, node_line(endpoint))
            if not ok:
                return fail(f"could not put {host.name} back on the proxy {proxy.name}: {output}")
    return True


def _running(service: str, manager: str, supervisor_conf: str) -> bool:
    state, = facts(_status(service, manager, supervisor_conf))
    if manager == "systemd":
        return bool(state.get("running"))
    return (state or {}).get(service) == "RUNNING"


def _status(service: str, manager: str, supervisor_conf: str) -> tuple:
    """What ``_running`` asks."""
    if manager == "systemd":
        return SystemdUnits, {"unit": f"{service}.service"}
    return SupervisorPrograms, {"conf": supervisor_conf}


@asks(lambda service, manager, supervisor_conf, **_: [_status(service, manager, supervisor_conf)])
@operation()
def upgraded(service: str, manager: str, supervisor_conf: str, virtualenv: str, packages: list[str],
             collect: str, stamp: str, proxies: list[str], node_file: str, endpoint: str, check: str):
    """The pinned ``packages`` (``name==version``) installed in ``virtualenv`` in the node's
    turn, with ``service`` running: drained, installed, static files collected (``collect``),
    restarted, checked, put back; ``stamp`` (the restart's) then marks the restart done. A
    service not running yet is installed by the deploy's own steps."""
    if not _running(service, manager, supervisor_conf):
        host.noop(f"{service} is not running: installed before it starts")
        return
    installed = venv_distributions(virtualenv)
    changing = [spec for spec in packages
                if (wanted := parse(spec))[1] is not None and installed.get(wanted[0]) != wanted[1]]
    if not changing:
        host.noop(f"{virtualenv} has the pinned releases")
        return
    install = f"{shlex.quote(virtualenv.rstrip('/'))}/bin/pip install {shlex.join(changing)}"
    steps = [("install", install), ("static files", collect),
             ("restart", service_commands.shell(manager, "restart", service, supervisor_conf)), ("check", check)]
    yield FunctionCommand(_roll, (proxies, node_file, endpoint, steps), {})
    yield StringCommand("touch", QuoteString(stamp))


@asks(lambda service, manager, supervisor_conf, restart_sources, stamp, **_: [
    _status(service, manager, supervisor_conf),
    (ChangedSince, {"paths": tuple(restart_sources), "reference": stamp})])
@operation()
def restarted(service: str, manager: str, supervisor_conf: str, restart_sources: list[str], stamp: str,
              proxies: list[str], node_file: str, endpoint: str, check: str):
    """``service`` (running) restarted in its turn when any of ``restart_sources`` changed since
    ``stamp``: drained from the ``proxies`` (inventory names) first, where ``node_file`` is its
    upstream line for ``endpoint``, put back once ``check`` (a shell command) passes. A service
    not running is left to services.start, which starts it."""
    if not _running(service, manager, supervisor_conf):
        host.noop(f"{service} is not running: started, not restarted")
        return
    if not fact(ChangedSince, paths=tuple(restart_sources), reference=stamp):
        host.noop(f"{service} runs what is on disk")
        return
    restart = service_commands.shell(manager, "restart", service, supervisor_conf)
    yield FunctionCommand(_roll, (proxies, node_file, endpoint, [("restart", restart), ("check", check)]), {})
    yield StringCommand("touch", QuoteString(stamp))

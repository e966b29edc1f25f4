"""How a service manager is told to act on one service: one table, used by the deploy's
operations and handed to the backup tool (files/omero-backup) in its configuration."""

import shlex

# Each manager's words for an action; supervisord has no reload: a HUP is nginx's graceful one
# and PostgreSQL's configuration reload.
ACTIONS = {
    "systemd": {"start": ["start"], "stop": ["stop"], "restart": ["restart"], "status": ["status"],
                "reload": ["reload"], "enable": ["enable"]},
    "supervisord": {"start": ["start"], "stop": ["stop"], "restart": ["restart"], "status": ["status"],
                    "reload": ["signal", "HUP"]},
}


def argv(manager: str, action: str, service: str, supervisor_conf: str = "") -> list[str]:
    """The command that does ``action`` to ``service`` (systemd: a unit name, ``.service``
    when it has no suffix; supervisord: a program of the configuration ``supervisor_conf``)."""
    words = ACTIONS[manager][action]
    if manager == "supervisord":
        return ["supervisorctl", "-c", supervisor_conf, *words, service]
    return ["systemctl", *words, service if "." in service else f"{service}.service"]


def shell(manager: str, action: str, service: str, supervisor_conf: str = "") -> str:
    """``argv`` as one shell command line, each word quoted."""
    return shlex.join(argv(manager, action, service, supervisor_conf))

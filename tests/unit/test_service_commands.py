"""The one table of service commands: what the deploy runs and what the backup tool is
handed, under systemd and supervisord."""

import pytest

from deploys import service_commands

pytestmark = pytest.mark.unit

CONF = "/etc/supervisor/supervisord.conf"

CASES = [
    ("systemd", "start", "omero-web", "systemctl start omero-web.service"),
    ("systemd", "stop", "omero-server", "systemctl stop omero-server.service"),
    ("systemd", "restart", "postgresql@15-main.service", "systemctl restart postgresql@15-main.service"),
    ("systemd", "status", "nginx", "systemctl status nginx.service"),
    ("systemd", "reload", "nginx", "systemctl reload nginx.service"),
    ("systemd", "enable", "omero-backup.timer", "systemctl enable omero-backup.timer"),
    ("supervisord", "start", "omero-web", f"supervisorctl -c {CONF} start omero-web"),
    ("supervisord", "stop", "omero-server", f"supervisorctl -c {CONF} stop omero-server"),
    ("supervisord", "restart", "postgresql", f"supervisorctl -c {CONF} restart postgresql"),
    ("supervisord", "status", "nginx", f"supervisorctl -c {CONF} status nginx"),
    # supervisord has no reload: nginx's graceful one is a HUP.
    ("supervisord", "reload", "nginx", f"supervisorctl -c {CONF} signal HUP nginx"),
]


@pytest.mark.parametrize(("manager", "action", "service", "expected"), CASES)
def test_command(manager, action, service, expected):
    assert service_commands.shell(manager, action, service, CONF) == expected
    assert service_commands.argv(manager, action, service, CONF) == expected.split()


def test_quoted_for_the_shell():
    command = service_commands.shell("supervisord", "stop", "omero-web", "/etc/my supervisor.conf")
    assert command == "supervisorctl -c '/etc/my supervisor.conf' stop omero-web"


def test_no_enable_under_supervisord():
    # supervisord starts every program it knows at boot: there is nothing to enable.
    with pytest.raises(KeyError):
        service_commands.argv("supervisord", "enable", "omero-web", CONF)

"""Runs that die half-way converge: a fresh systemd host's deploy is killed (SIGKILL) while
apt installs, and the next run waits for what it left running; then it is killed at
five points, each run resuming where the last died, then run to the end; and a changed
option is interrupted right after its file is written. The host must end where an
uninterrupted deploy does: every service running the configuration on disk, the lab's CA
in the bundle, the page served, and a dry run with nothing to change."""

import re
import subprocess

import pytest

from facts.omero import package_manager_running

from .checks import login_page
from .testhosts import (
    CLEAN_ENV,
    EXTRA_CA_CERTIFICATES,
    PYINFRA,
    ROOT,
    SUBNET,
    SystemdHost,
    deploy,
    host_data,
    hosts_with_changes,
    interrupted_deploy,
    write_inventory,
)

PG_CONF = "/etc/postgresql/15/main"
FIRST_CA = EXTRA_CA_CERTIFICATES[0].rsplit("/", 1)[1] if EXTRA_CA_CERTIFICATES else None
# (operation, seconds into it to kill; None: right after it completed)
KILL_POINTS = [
    (f"Trust the CA certificate {FIRST_CA}", None),
    (f"Write {PG_CONF}/pg_hba.conf", None),
    ("Install IcePy 3.6.5 from the wheel cache, omero-py==5.23.0, omero-web==5.33.2, gunicorn", 8.0),
    ("Write /opt/omero/web/config/01-omero-web.omero", None),
    ("Write /etc/nginx/conf.d/omero-web.conf", None),
]
SERVICES = {  # unit: the files its processes must have started after
    "omero-web.service": ["/opt/omero/web/OMERO.web/etc/grid/config.xml", "/etc/systemd/system/omero-web.service"],
    "nginx.service": ["/etc/nginx/conf.d/omero-web.conf"],
}
# PostgreSQL applies its configuration by a reload (a restart only to listen elsewhere): it
# says itself when it last read its files.
PG_FILES = [f"{PG_CONF}/pg_hba.conf", f"{PG_CONF}/conf.d/omero.conf"]
# nginx applies a new configuration by a reload: its master stays, the workers that serve
# are new ones (those still finishing old requests are titled "... is shutting down").
SERVING_CHILDREN = {"nginx.service": "^nginx: worker process$"}


@pytest.fixture(scope="module")
def host(tmp_path_factory):
    if not FIRST_CA:
        pytest.skip("needs an extra CA certificate on this machine (/usr/local/share/ca-certificates)")
    test_host = SystemdHost("converge", f"{SUBNET}.70")
    try:
        yield test_host.create()
    finally:
        test_host.destroy()


def serving_processes(host, unit: str) -> list[str]:
    pid = host.run(f"systemctl show --value -p MainPID {unit}").stdout.strip()
    assert pid not in ("", "0"), f"{unit} is not running"
    if unit not in SERVING_CHILDREN:
        return [pid]
    children = host.run(f"pgrep -P {pid} -f '{SERVING_CHILDREN[unit]}'").stdout.split()
    assert children, f"{unit} (pid {pid}) has no serving process"
    return children


def running_configuration_is_current(host) -> None:
    """Each service's serving processes started after every file it reads was last written;
    PostgreSQL read its files after they were last written."""
    for unit, paths in SERVICES.items():
        for pid in serving_processes(host, unit):
            # Process start: boot time (whole seconds) + its start in clock ticks since boot.
            ticks, boot, started = host.run(
                f"getconf CLK_TCK; awk '/^btime/ {{print $2}}' /proc/stat; cut -d' ' -f22 /proc/{pid}/stat"
            ).stdout.split()
            start = int(boot) + int(started) / int(ticks)
            for path in paths:
                written = float(host.run(f"stat -c %.9Y {path}").stdout)
                # btime is rounded down: a second's slack.
                assert written < start + 1, f"{unit} (pid {pid}) started before {path} was written"
    loaded = float(host.run("runuser -u postgres -- psql -XAtc "
                            "'SELECT extract(epoch FROM pg_conf_load_time())'").stdout)
    for path in PG_FILES:
        written = float(host.run(f"stat -c %.9Y {path}").stdout)
        assert written <= loaded, f"PostgreSQL last read its configuration before {path} was written"


def test_run_right_after_one_killed_during_a_package_install_finishes(host, tmp_path, secrets_dir):
    """A deploy killed while apt installs leaves apt running on the host; a run started right
    away waits for it (saying so) instead of failing on dpkg's lock, and finishes. What the
    killed run left is held (SIGSTOP) until the next run has seen it, so the case is made
    however fast apt would have finished."""
    inventory = write_inventory(tmp_path / "killed-install.py", {"omero_database": [host], "omero_web": [host]},
                                {host.name: host_data(host, secrets_dir)})
    interrupted_deploy(inventory, "Install the packages", during=4.0)
    listed = re.findall(r"/proc/([0-9]+)/comm", host.run(package_manager_running(listed=True), check=False).stdout)
    # Each stopped alone: one listed may have ended since (apt's dpkg children come and go).
    host.run(f"for pid in {' '.join(listed)}; do kill -STOP $pid 2>/dev/null; done; true")
    left = re.findall(r"/proc/([0-9]+)/comm", host.run(package_manager_running(listed=True), check=False).stdout)
    assert left, "the killed run left no package manager running: the case was not made"
    process = subprocess.Popen([PYINFRA, "-y", "-vvv", str(inventory), "deploy.py"], cwd=ROOT, env=CLEAN_ENV,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output = []
    try:
        for line in process.stdout:
            output.append(line)
            # What the next run says once it has seen the package manager left running.
            if "left running by an earlier run" in line:
                break
        host.run(f"kill -CONT {' '.join(left)}", check=False)
        output.append(process.communicate(timeout=1800)[0])
    finally:
        process.kill()
    shown = "".join(output)
    assert process.returncode == 0, shown[-3000:]
    assert "left running by an earlier run" in shown
    assert not host.run(package_manager_running(listed=True), check=False).stdout.strip()
    login_page(f"http://{host.address}")


def test_killed_at_every_point_then_converges(host, tmp_path, secrets_dir):
    inventory = write_inventory(tmp_path / "converge.py", {"omero_database": [host], "omero_web": [host]},
                                {host.name: host_data(host, secrets_dir)})
    for operation, during in KILL_POINTS:
        interrupted_deploy(inventory, operation, during=during)
    deploy(inventory, host)
    running_configuration_is_current(host)
    bundle = host.run("cat /etc/ssl/certs/ca-certificates.crt").stdout
    for path in EXTRA_CA_CERTIFICATES:
        assert open(path).read().splitlines()[1] in bundle
    login_page(f"http://{host.address}")
    assert hosts_with_changes(inventory) == {}


def test_changed_option_interrupted_after_its_file_is_written(host, tmp_path, secrets_dir):
    inventory = write_inventory(tmp_path / "converge-5433.py", {"omero_database": [host], "omero_web": [host]},
                                {host.name: host_data(host, secrets_dir, omero_db_port=5433)})
    interrupted_deploy(inventory, f"Write {PG_CONF}/conf.d/omero.conf")
    assert host.testinfra.socket("tcp://127.0.0.1:5432").is_listening  # not applied yet
    deploy(inventory, host)
    assert host.testinfra.socket("tcp://127.0.0.1:5433").is_listening
    running_configuration_is_current(host)
    assert hosts_with_changes(inventory) == {}

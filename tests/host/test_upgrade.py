"""Upgrades and a move to a newer OS, on systemd hosts, done as docs/upgrade.md says: its
``sh`` blocks are run exactly as written, on the host or the machine their first line names.

- OMERO.web and two apps deployed at older releases, then upgraded to the pinned ones by
  taking the pins out of the inventory: new packages, static files collected again and
  served by nginx, OMERO.web restarted, the site's settings and Django key kept, nothing left
  to change.
- A Debian 12 host (PostgreSQL 15) with rows, large objects and files, backed up to a backup
  host, moved to a new Debian 13 host (PostgreSQL 17) that takes over its inventory name:
  every row, large object and file identical afterwards, the services answering.
"""

import json
import shlex
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from deploys.options import DEFAULTS
from deploys.webapps import APPS

from ..docs_commands import blocks
from .checks import login_page
from .test_backup import DATA_DIR, WRITE_DATA, WRITE_FILES, database_content, files_content, status, without_caches
from .testhosts import (
    CLEAN_ENV,
    DEBIAN13_SYSTEMD,
    PYINFRA,
    ROOT,
    SUBNET,
    SystemdHost,
    deployed,
    deployed_together,
    host_data,
    hosts_with_changes,
    write_inventory,
)

WEB_SECTION, MOVE_SECTION = "OMERO.web and its apps", "Moving to a new host (and a newer OS)"
OLD_HOST, YOUR_MACHINE, NEW_HOST = "the old host", "your machine", "the new host"
# Every block of the document, each run by one fixture below.
BLOCKS = {(WEB_SECTION, YOUR_MACHINE), (MOVE_SECTION, OLD_HOST), (MOVE_SECTION, YOUR_MACHINE),
          (MOVE_SECTION, NEW_HOST)}

WEB_VENV = "/opt/omero/web/venv3"
OMERODIR = "/opt/omero/web/OMERO.web"
STATIC = f"{OMERODIR}/var/static"
OLD_RELEASES = {"omero-web": "5.29.2", "omero-py": "5.22.1", "omero-figure": "7.3.1", "omero-iviewer": "0.18.0"}
PINNED = {"omero-web": DEFAULTS["omero_web_version"], "omero-py": DEFAULTS["omero_py_version"],
          "omero-figure": APPS["omero-figure"].version, "omero-iviewer": APPS["omero-iviewer"].version}
SITE_CONFIG = {"omero_web_config": {"omero.web.page_size": 123}}


def doc_blocks() -> dict[tuple[str, str], str]:
    """docs/upgrade.md's ``sh`` blocks by (section, where the first line says they run)."""
    found = {}
    for block in blocks():
        if block.path == "docs/upgrade.md":
            where = block.first.removeprefix("# on ").split(",")[0]
            assert (block.section, where) not in found, f"two blocks for {where} in {block.section}"
            found[(block.section, where)] = block.text
    return found


def on_host(host, section: str, where: str) -> subprocess.CompletedProcess:
    result = host.run("set -e\n" + doc_blocks()[(section, where)], check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def on_your_machine(inventory: Path, section: str) -> subprocess.CompletedProcess:
    """The block run in the deploy's directory, as a sysadmin would, with ``inventory`` as
    the site's inventory.py."""
    link = ROOT / "inventory.py"
    # Only a link an earlier (killed) run left is replaced, never a sysadmin's own inventory.
    assert link.is_symlink() or not link.exists(), f"{link} exists: move it away to run this test"
    link.unlink(missing_ok=True)
    link.symlink_to(inventory)
    try:
        result = subprocess.run(["bash", "-e", "-c", doc_blocks()[(section, YOUR_MACHINE)]], cwd=ROOT,
                                env={**CLEAN_ENV, "PATH": f"{Path(PYINFRA).parent}:{CLEAN_ENV['PATH']}"},
                                capture_output=True, text=True, timeout=2400)
    finally:
        link.unlink()
    log = ROOT / "artifacts" / f"upgrade-{inventory.stem}.log"
    log.parent.mkdir(exist_ok=True)
    log.write_text(result.stdout + result.stderr)
    assert result.returncode == 0, f"failed, whole output in {log}:\n{result.stdout[-3000:]}{result.stderr[-3000:]}"
    return result


def record(**figures) -> None:
    """Times kept for the README and the issue's closing note."""
    path = ROOT / "artifacts" / "upgrade-figures.json"
    path.parent.mkdir(exist_ok=True)
    kept = json.loads(path.read_text()) if path.exists() else {}
    path.write_text(json.dumps(kept | figures, indent=2) + "\n")


def test_the_document_has_no_command_this_module_does_not_run():
    assert set(doc_blocks()) == BLOCKS


# -- OMERO.web and its apps ---------------------------------------------------------------
def installed(host) -> dict[str, str]:
    listed = json.loads(host.run(f"{WEB_VENV}/bin/pip list --format=json").stdout)
    return {package["name"]: package["version"] for package in listed if package["name"] in PINNED}


def static_differences(host) -> str:
    """Each app's static files (and the webclient's) as collected, against the installed
    package's: empty when nginx serves the installed release's files and no others."""
    site = host.run(f"echo {WEB_VENV}/lib/python3*/site-packages").stdout.strip()
    return host.run(f"diff -rq {site}/omero_figure/static/omero_figure {STATIC}/omero_figure; "
                    f"diff -rq {site}/omero_iviewer/static/omero_iviewer {STATIC}/omero_iviewer; "
                    f"diff -rq {site}/omeroweb/webclient/static/webclient {STATIC}/webclient", check=False).stdout


def served(host, path: str) -> bytes:
    return subprocess.run(["curl", "-sSf", "--max-time", "20", f"http://{host.address}{path}"],
                          capture_output=True, check=True).stdout


def web_state(host) -> dict:
    return {
        "pid": host.run("systemctl show -p MainPID --value omero-web.service").stdout.strip(),
        "figure.js": served(host, FIGURE_JS),
        "secret key": host.run(f"sha256sum {OMERODIR}/var/django_secret_key").stdout,
        "page size": host.run(f"OMERODIR={OMERODIR} runuser -u omero-web -- {WEB_VENV}/bin/omero config get "
                              "omero.web.page_size").stdout.strip(),
    }


# A file both releases ship, with other content in each.
FIGURE_JS = "/static/omero_figure/index.html"


@pytest.fixture(scope="module")
def web(tmp_path_factory, secrets_dir):
    old = {"omero_web_version": OLD_RELEASES["omero-web"], "omero_py_version": OLD_RELEASES["omero-py"],
           "omero_web_apps": [f"{app}=={OLD_RELEASES[app]}" for app in ("omero-figure", "omero-iviewer")]}
    with deployed(SystemdHost("upgrade-web", f"{SUBNET}.90"), ["omero_web"], tmp_path_factory.mktemp("web"),
                  secrets_dir, **old, **SITE_CONFIG) as host:
        yield host


@pytest.fixture(scope="module")
def upgraded(web, secrets_dir):
    """The web host before and after its inventory's pins were taken out and the deploy run."""
    assert installed(web) == OLD_RELEASES
    assert static_differences(web) == ""
    before = web_state(web)
    write_inventory(web.inventory, {"omero_web": [web]}, {
        web.name: host_data(web, secrets_dir, omero_web_apps=["omero-figure", "omero-iviewer"], **SITE_CONFIG)})
    started = time.monotonic()
    on_your_machine(web.inventory, WEB_SECTION)
    record(web_upgrade_seconds=round(time.monotonic() - started, 1))
    return before, web_state(web)


def test_pinned_releases_installed(web, upgraded):
    assert installed(web) == PINNED
    assert web.run(f"{WEB_VENV}/bin/pip check").returncode == 0


def test_static_files_collected_again_and_served(web, upgraded):
    before, after = upgraded
    assert static_differences(web) == ""
    assert after["figure.js"] != before["figure.js"]
    site = web.run(f"echo {WEB_VENV}/lib/python3*/site-packages").stdout.strip()
    assert after["figure.js"] == web.read_bytes(f"{site}/omero_figure/static/omero_figure/index.html")


def test_omero_web_restarted_and_answers_with_the_sites_settings(web, upgraded):
    before, after = upgraded
    assert after["pid"] != before["pid"]
    assert (after["secret key"], after["page size"]) == (before["secret key"], before["page size"]) != ("", "")
    assert after["page size"] == "123"
    login_page(f"http://{web.address}")


def test_upgraded_web_host_changes_nothing_on_the_next_run(web, upgraded):
    assert hosts_with_changes(web.inventory) == {}


# -- the move from Debian 12 to Debian 13 -------------------------------------------------
@dataclass
class TakesOver(SystemdHost):
    """A new machine under an old host's inventory name: how a site replaces a host."""

    inventory_name: str = ""

    def inventory_entry(self) -> tuple[str, dict]:
        return self.inventory_name, super().inventory_entry()[1]


@pytest.fixture(scope="module")
def moved(tmp_path_factory, secrets_dir):
    """An all-in-one Debian 12 host with data, moved to a Debian 13 host as the document says;
    yields the new host and the old host's content."""
    old, store = SystemdHost("move-bookworm", f"{SUBNET}.91"), SystemdHost("move-store", f"{SUBNET}.92")
    new = TakesOver("move-trixie", f"{SUBNET}.93", image=DEBIAN13_SYSTEMD, python_tag="cp313",
                    inventory_name=old.name)
    directory = tmp_path_factory.mktemp("move")
    with deployed_together("move", {"omero_database": [old], "omero_web": [old], "omero_backup": [store]},
                           directory, secrets_dir):
        try:
            assert old.run("runuser -u postgres -- psql -XAtc 'SHOW server_version_num'").stdout.startswith("15")
            old.run(f"runuser -u postgres -- psql -X -q -v ON_ERROR_STOP=1 -d omero <<'EOF'\n{WRITE_DATA}\nEOF")
            old.run(WRITE_FILES)
            content = {"rows": database_content(old), "files": without_caches(files_content(old))}
            assert "200000" in content["rows"]["samples"]

            started = time.monotonic()
            on_host(old, MOVE_SECTION, OLD_HOST)
            stop_and_back_up = time.monotonic() - started
            assert status(old)["backup"]["state"] == "ok"
            assert old.run("systemctl is-enabled omero-backup.timer", check=False).stdout.strip() == "disabled"
            # Still what the lab had: the backup was taken with OMERO stopped.
            assert database_content(old) == content["rows"]

            new.create()
            inventory = write_inventory(directory / "move-new.py", {
                "omero_database": [new], "omero_web": [new], "omero_backup": [store]},
                {host.name: host_data(host, secrets_dir) for host in (new, store)})
            started = time.monotonic()
            on_your_machine(inventory, MOVE_SECTION)
            deploy_new = time.monotonic() - started
            started = time.monotonic()
            on_host(new, MOVE_SECTION, NEW_HOST)
            restore_and_drill = time.monotonic() - started
            record(move_stop_and_last_backup_seconds=round(stop_and_back_up, 1),
                   move_deploy_new_host_seconds=round(deploy_new, 1),
                   move_restore_and_drill_seconds=round(restore_and_drill, 1))
            yield new, content
        finally:
            new.destroy()


def test_new_host_runs_debian_13_and_postgresql_17(moved):
    new, _ = moved
    assert new.run(". /etc/os-release && echo $VERSION_ID").stdout.strip() == "13"
    assert new.run("runuser -u postgres -- psql -XAtc 'SHOW server_version_num'").stdout.startswith("17")


def test_every_row_large_object_and_file_identical_after_the_move(moved):
    new, content = moved
    assert database_content(new) == content["rows"]
    assert files_content(new) == content["files"]
    assert new.run(f"stat -c %U {shlex.quote(DATA_DIR)}/ManagedRepository").stdout.strip() == "nobody"


def test_new_host_serves_the_site_and_backs_up_under_the_old_name(moved):
    new, _ = moved
    for unit in ("postgresql@17-main.service", "omero-web.service", "nginx.service", "omero-backup.timer"):
        assert new.run(f"systemctl is-active {unit}").stdout.strip() == "active", unit
    login_page(f"http://{new.address}")
    # The backup host's repository is the new host's own: a backup now lands beside the old ones.
    new.run("omero-backup run")
    assert status(new)["backup"]["state"] == "ok"
    snapshots = new.run("omero-backup snapshots --repository remote").stdout
    assert len([line for line in snapshots.splitlines() if "move-bookworm" in line]) >= 2, snapshots


def test_moved_site_changes_nothing_on_the_next_run(moved):
    new, _ = moved
    assert hosts_with_changes(new.inventory) == {}

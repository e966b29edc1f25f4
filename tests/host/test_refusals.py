"""Bad requests stop the deploy before any host changes."""

from .testhosts import SUBNET, ContainerHost, host_data, pyinfra, write_inventory


def test_server_without_artifact_stops_before_changing_anything(tmp_path, secrets_dir):
    host = ContainerHost("refusal", f"{SUBNET}.40").create()
    try:
        packages_before = host.run("sha256sum /var/lib/dpkg/status").stdout
        inventory = write_inventory(
            tmp_path / "with-server.py",
            {"omero_database": [host], "omero_server": [host], "omero_web": [host]},
            {host.name: host_data(host, secrets_dir)},
        )
        result = pyinfra(inventory)
        assert result.returncode != 0
        output = result.stdout + result.stderr
        assert "option omero_server_artifact" in output and "is required" in output
        assert "Starting operation" not in output
        assert host.run("sha256sum /var/lib/dpkg/status").stdout == packages_before
        for path in ("/opt/omero", "/usr/sbin/policy-rc.d"):
            assert not host.testinfra.file(path).exists, path
    finally:
        host.destroy()


def test_what_the_host_holds_is_checked_before_anything_changes(tmp_path, secrets_dir):
    """Accounts and directories as the host has them (read as facts while planning): a lab
    member's account as a service user, a base directory in that member's home, a link into
    /etc. Each is refused, naming the option, before any operation starts."""
    host = ContainerHost("refusal-state", f"{SUBNET}.41").create()
    try:
        host.run("useradd --create-home --uid 1000 --shell /bin/bash alice && ln -s /etc /srv/etc-link")
        cases = [
            ({"omero_web_user": "alice"}, "option omero_web_user", "'alice' is a login account (uid 1000)"),
            ({"omero_web_basedir": "/home/alice/omero-web"}, "option omero_web_basedir",
             "/home/alice, above /home/alice/omero-web, belongs to uid 1000"),
            ({"omero_web_basedir": "/srv/etc-link/omero-web"}, "option omero_web_basedir",
             "/srv/etc-link/omero-web leads to /etc/omero-web: /etc/omero-web is inside /etc"),
        ]
        for index, (options, option, problem) in enumerate(cases):
            inventory = write_inventory(tmp_path / f"state-{index}.py", {"omero_web": [host]},
                                        {host.name: host_data(host, secrets_dir, **options)})
            result = pyinfra(inventory)
            output = result.stdout + result.stderr
            assert result.returncode != 0 and option in output and problem in output, output[-2000:]
            assert "Starting operation" not in output
        assert not host.testinfra.file("/opt/omero").exists
    finally:
        host.destroy()

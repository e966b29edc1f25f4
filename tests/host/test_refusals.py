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

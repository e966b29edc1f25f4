"""Bad requests stop the deploy before any host changes."""

import hashlib

from .testhosts import ChrootHost, host_data, pyinfra, write_inventory


def test_server_without_artifact_stops_before_changing_anything(tmp_path, secrets_dir):
    host = ChrootHost("refusal", "127.0.0.5").create()
    try:
        packages_before = hashlib.sha256((host.root / "var/lib/dpkg/status").read_bytes()).digest()
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
        assert hashlib.sha256((host.root / "var/lib/dpkg/status").read_bytes()).digest() == packages_before
        assert not (host.root / "opt/omero").exists()
        assert not (host.root / "usr/sbin/policy-rc.d").exists()
    finally:
        host.destroy()

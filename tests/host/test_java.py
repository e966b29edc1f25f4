"""Java and the other packages an omero_server host gets (the rest of the server needs the zip)."""

from .testhosts import SUBNET, ContainerHost, host_data, hosts_with_changes, pyinfra, write_inventory


def test_java_17_on_debian_12(tmp_path, secrets_dir):
    host = ContainerHost("java", f"{SUBNET}.41").create()
    try:
        inventory = write_inventory(tmp_path / "java.py", {"omero_web": [host]},
                                    {host.name: host_data(host, secrets_dir)})
        result = pyinfra(inventory, "-y", deploy_file="tests/host/deploy_java.py")
        assert result.returncode == 0, result.stderr[-3000:]
        assert 'openjdk version "17.' in host.run("java -version 2>&1").stdout
        assert hosts_with_changes(inventory, deploy_file="tests/host/deploy_java.py") == {}
    finally:
        host.destroy()

"""The balancer of a read-only cluster for real, without OMERO.server: the
``omero_ice_balancer`` host deployed alone (``--limit``) from an inventory whose two
``omero_server_readonly`` hosts are stand-ins, each answering on Ice's port with its own
name. What is checked is haproxy as the deploy configures it: running, a client's address
kept on one node, a node that stops answering skipped, a second run changing nothing.
(The read-only servers themselves: tests/host/test_readonly.py, with the artifacts.)
"""

import json

import pytest

from .testhosts import SUBNET, SystemdHost, host_data, pyinfra, wait_for, write_inventory

LB = "readonly-balancer"
# A stand-in read-only server: every connection to 4064 is answered with the host's name.
STAND_IN = ("systemd-run --unit fake-ice systemd-socket-activate --accept --inetd "
            "-l 0.0.0.0:4064 /bin/hostname")


@pytest.fixture(scope="module")
def balancer(tmp_path_factory, secrets_dir):
    lb = SystemdHost(LB, f"{SUBNET}.230")
    nodes = [SystemdHost(f"readonly-node{n}", f"{SUBNET}.{230 + n}") for n in (1, 2)]
    directory = tmp_path_factory.mktemp("balancer")
    try:
        for host in (lb, *nodes):
            host.create()
        for node in nodes:
            node.run(STAND_IN)
        inventory = write_inventory(directory / "balancer.py",
                                    {"omero_ice_balancer": [lb], "omero_server_readonly": nodes},
                                    {host.name: host_data(host, secrets_dir) for host in (lb, *nodes)})
        result = pyinfra(inventory, "-y", "--limit", LB)
        assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
        yield lb, nodes, inventory
    finally:
        for host in (lb, *nodes):
            host.destroy()


def answer(lb) -> str:
    """The name of the node a connection to the balancer reached (from the balancer itself)."""
    return lb.run("timeout 5 bash -c 'exec 3<>/dev/tcp/127.0.0.1/4064; cat <&3'", check=False).stdout.strip()


def test_haproxy_runs_the_deploys_configuration(balancer):
    lb, nodes, _ = balancer
    service = lb.testinfra.service("haproxy")
    assert service.is_running and service.is_enabled
    config = lb.testinfra.file("/etc/haproxy/haproxy.cfg")
    assert (config.user, config.group, config.mode) == ("root", "root", 0o644)
    assert [line.split()[2] for line in config.content_string.splitlines() if line.strip().startswith("server ")] \
        == [f"{node.address}:4064" for node in nodes]
    assert lb.testinfra.socket("tcp://0.0.0.0:4064").is_listening


def test_a_client_stays_on_one_node_and_moves_when_it_is_lost(balancer):
    lb, nodes, _ = balancer
    first = wait_for(lambda: answer(lb) or None, "an answer through the balancer", 30)
    assert first in {node.name for node in nodes}
    # balance source: the same client address, the same node, every time.
    assert {answer(lb) for _ in range(10)} == {first}
    lost = next(node for node in nodes if node.name == first)
    lost.run("systemctl stop fake-ice.service")
    try:
        # Skipped once its checks fail (3 x 5 s): the client is moved to the other node.
        other = wait_for(lambda: (name := answer(lb)) and name != first and name, "the other node", 60)
        assert other in {node.name for node in nodes} - {first}
    finally:
        lost.run(STAND_IN)


def test_second_run_changes_nothing(balancer):
    _, _, inventory = balancer
    result = pyinfra(inventory, "--dry", "--json", "--limit", LB)
    assert result.returncode == 0, result.stderr[-3000:]
    changing = [op["name"] for op in json.loads(result.stdout)["plan"]
                if op["hosts_with_change"] or op["hosts_with_conditional_change"]]
    assert changing == []


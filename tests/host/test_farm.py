"""The front proxy on the farm (tests/host/farm.py): requests through it to every web node,
the web nodes refusing everyone else, its caches and their privacy, the maintenance page,
and a bounded load from this machine that loses no request while a web node is stopped, while
omero-web is upgraded from older releases on every node (in turn, drained first), and while a node
is added and taken out again. The site is left as its inventory says.
"""

import time

import requests

from deploys.options import DEFAULTS

from .load import Load
from .testhosts import deploy, hosts_with_changes, podman, wait_for

LOGIN = "/webclient/login/"
STATIC = "/static/webgateway/css/ome.body.css"
SITE = "/etc/nginx/conf.d/omero-web.conf"  # a web node's nginx site on Debian


def base(farm) -> str:
    return f"http://127.0.0.1:{farm.proxy.published[80]}"


def get(farm, path: str, **kwargs) -> requests.Response:
    return requests.get(base(farm) + path, timeout=30, allow_redirects=False, **kwargs)


def served_by(node) -> int:
    """How many requests the node's nginx has logged from the proxy."""
    return int(node.run("grep -c 'GET ' /var/log/nginx/access.log || true").stdout.strip() or 0)


def deploy_farm(farm, *only) -> None:
    """The site deployed as its inventory says (``only``: those hosts alone, by name)."""
    limit = ("--limit", ",".join(host.name for host in only)) if only else ()
    deploy(farm.write_inventory(), *(only or farm.hosts), verbosity=limit)


def test_requests_go_through_the_proxy_to_every_node(farm):
    before = {node.name: served_by(node) for node in farm.web}
    for _ in range(30):
        response = get(farm, LOGIN)
        assert response.status_code == 200, response.text[:500]
    after = {node.name: served_by(node) for node in farm.web}
    assert all(after[name] > before[name] for name in before), (before, after)
    # The proxy's headers are the site's: HSTS only under HTTPS, the others on every response.
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Content-Security-Policy"] == "frame-ancestors 'self'"


def test_web_nodes_admit_the_proxy_alone(farm):
    node, other = farm.web[0], farm.web[1]
    url = f"http://{node.address}{LOGIN}"
    # From this machine, and from another host of the site: refused.
    assert requests.get(url, timeout=10).status_code == 403
    code = other.run(f"curl -s -o /dev/null -w '%{{http_code}}' {url}").stdout
    assert code == "403"
    # From the proxy: served (as nginx's own check, through the node's address).
    proxy_code = farm.proxy.run(f"curl -s -o /dev/null -w '%{{http_code}}' {url}").stdout
    assert proxy_code == "200"
    # The client's address reaches the node's log through the proxy's X-Forwarded-For only.
    forged = get(farm, LOGIN + "?forged", headers={"X-Forwarded-For": "192.0.2.77"})
    assert forged.status_code == 200
    logged = "".join(n.run("grep 'GET /webclient/login/?forged' /var/log/nginx/access.log || true").stdout
                     for n in farm.web).split()
    # The first word of the line: the client as the proxy saw it, neither forged nor the proxy.
    assert logged and logged[0] not in ("192.0.2.77", farm.proxy.address), logged


def test_static_files_are_cached_on_the_proxy(farm):
    statuses = [get(farm, STATIC).headers.get("X-Cache-Status") for _ in range(3)]
    assert statuses[0] in ("MISS", "HIT", "EXPIRED") and statuses[1:] == ["HIT", "HIT"], statuses
    assert get(farm, STATIC).text == farm.web[0].read_bytes(
        "/opt/omero/web/OMERO.web/var/static/webgateway/css/ome.body.css").decode()


def answers_test(node, path: str) -> bool:
    """Whether the node's nginx (new workers, after a reload) answers ``path`` with the test's location."""
    return node.run(f"curl -s http://127.0.0.1{path}", check=False).stdout.startswith("for")


def test_private_images_are_cached_per_session(farm):
    """OMERO.web renders a thumbnail only for a user logged in to OMERO.server, which the farm
    has not; each node's nginx is given, for this test only, a location answering a
    thumbnail's URL with the session it was asked for (the origin's answer is what the proxy
    caches; the proxy's configuration is the deploy's), then its own site back."""
    path = "/webgateway/render_thumbnail/1/96/"
    answer = f'location = {path} {{ default_type text/plain; return 200 "for $cookie_sessionid"; }}'
    for node in farm.web:
        node.run(f"cp -p {SITE} /root/site.kept && sed -i 's|^    location / {{|    {answer}\\n&|' {SITE} "
                 "&& nginx -t -q && systemctl reload nginx")
        # A reload is taken in by new workers a moment later.
        wait_for(lambda node=node: answers_test(node, path), f"{node.name} to answer {path}", 30, interval=0.2)
    try:
        alice = [get(farm, path, cookies={"sessionid": "alice"}) for _ in range(2)]
        bob = get(farm, path, cookies={"sessionid": "bob"})
        nobody = [get(farm, path) for _ in range(2)]
    finally:
        for node in farm.web:
            # cp -p kept its time: the deploy sees the site it wrote, unchanged.
            node.run(f"mv -f /root/site.kept {SITE} && systemctl reload nginx")
            wait_for(lambda node=node: not answers_test(node, path), f"{node.name} to serve its own site", 30,
                     interval=0.2)
    assert [r.text for r in alice] == ["for alice"] * 2
    assert [r.headers["X-Cache-Status"] for r in alice] == ["MISS", "HIT"]
    # Another session is never served Alice's cached answer; no session: never cached.
    assert (bob.text, bob.headers["X-Cache-Status"]) == ("for bob", "MISS")
    assert [r.headers["X-Cache-Status"] for r in nobody] == ["BYPASS", "BYPASS"]


def test_maintenance_page(farm):
    farm.overrides.setdefault(farm.proxy.name, {})["omero_proxy_maintenance"] = True
    deploy_farm(farm, farm.proxy)
    for path in (LOGIN, STATIC, "/webclient/"):
        response = get(farm, path)
        assert response.status_code == 503
        assert response.headers["Retry-After"] == "300"
        assert "Down for maintenance" in response.text
    del farm.overrides[farm.proxy.name]["omero_proxy_maintenance"]
    deploy_farm(farm, farm.proxy)
    assert get(farm, LOGIN).status_code == 200


def loaded(farm, **kwargs) -> Load:
    return Load(base(farm), (LOGIN, STATIC, "/webgateway/render_thumbnail/1/96/"), **kwargs)


def assert_no_failures(load: Load) -> None:
    assert not load.exhausted, f"the load ran out after {load.sent} requests before the event ended"
    assert load.completed > 0 and load.failures == [], "\n".join(load.failures)


def test_no_request_lost_while_a_web_node_is_stopped(farm):
    node = farm.web[2]
    try:
        with loaded(farm, threads=10, pause=0.2, budget=3000) as load:
            time.sleep(3)
            podman("stop", "-t", "0", node.container)
            time.sleep(15)
    finally:
        podman("start", node.container)
        node.wait_booted()
        wait_for(lambda: node.run("curl -fs -o /dev/null http://127.0.0.1/webclient/login/", check=False)
                 .returncode == 0, f"{node.name} to serve again", 120)
    assert node._local_port(22) == node.ssh_port  # the inventory reaches it as before
    assert_no_failures(load)


def main_pids(farm) -> dict[str, str]:
    return {node.name: node.run("systemctl show -p MainPID --value omero-web").stdout.strip()
            for node in farm.web}


def restart_windows(farm) -> list[tuple[int, int]]:
    """When each node's omero-web last stopped and was up again (the kernel's monotonic clock,
    which every container shares), in order."""
    windows = []
    for node in farm.web:
        shown = node.run("systemctl show -p ActiveExitTimestampMonotonic -p ActiveEnterTimestampMonotonic "
                         "omero-web").stdout
        values = dict(line.split("=", 1) for line in shown.split())
        windows.append((int(values["ActiveExitTimestampMonotonic"]), int(values["ActiveEnterTimestampMonotonic"])))
    return sorted(windows)


def web_release(node) -> str:
    """The omero-web release in the node's OMERO.web venv."""
    return node.run("/opt/omero/web/venv3/bin/python -c 'import importlib.metadata as m; "
                    "print(m.version(\"omero-web\"))'").stdout.strip()


def test_upgrade_restarts_nodes_in_turn_without_losing_a_request(farm):
    # The site as a lab left it on older releases (test_upgrade.py's), then upgraded to the
    # pinned ones under load by taking the versions out of the inventory.
    older = {"omero_web_version": "5.29.2", "omero_py_version": "5.22.1"}
    for node in farm.web:
        farm.overrides.setdefault(node.name, {}).update(older)
    farm.deploy()
    assert {web_release(node) for node in farm.web} == {older["omero_web_version"]}
    before = main_pids(farm)
    for node in farm.web:
        for option in older:
            del farm.overrides[node.name][option]
    with loaded(farm, threads=10, pause=1, budget=5000) as load:
        farm.deploy()
    assert_no_failures(load)
    assert {web_release(node) for node in farm.web} == {DEFAULTS["omero_web_version"]}
    after = main_pids(farm)
    assert all(after[name] != before[name] for name in before), (before, after)
    # One at a time: each node stopped after the one before was up again.
    windows = restart_windows(farm)
    assert all(earlier[1] < later[0] for earlier, later in zip(windows, windows[1:], strict=False)), windows
    # Every node back in the upstream.
    lines = farm.proxy.run("cat /etc/nginx/omero-proxy-nodes/*.conf").stdout
    assert lines.count("server ") == len(farm.web) and " down" not in lines


def test_a_node_added_then_removed_without_losing_a_request(farm):
    spare = farm.spare_web
    spare.create()
    farm.web.append(spare)
    try:
        with loaded(farm, threads=10, pause=2, budget=4000) as load:
            farm.deploy()
        assert_no_failures(load)
        before = served_by(spare)
        for _ in range(40):
            assert get(farm, LOGIN).status_code == 200
        assert served_by(spare) > before
    finally:
        farm.web.remove(spare)
    with loaded(farm, threads=10, pause=1, budget=4000) as load:
        farm.deploy()
    assert_no_failures(load)
    before = served_by(spare)
    for _ in range(20):
        assert get(farm, LOGIN).status_code == 200
    assert served_by(spare) == before
    spare.destroy()


def test_second_run_changes_nothing(farm):
    assert hosts_with_changes(farm.write_inventory()) == {}

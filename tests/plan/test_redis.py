"""Shared sessions (omero_redis): the Redis host's configuration and address filter, and every
web node configured for it with the site's one password and secret key, on each OS family."""

import hashlib
import json
import re

import pytest

from deploys.errors import OmeroDeployError, OmeroOptionError

from .harness import SUPPORTED_OSES
from .test_platforms import installed_packages

pytestmark = pytest.mark.plan

REDIS, WEB1, WEB2, WEB6 = "10.0.0.30", "10.0.0.31", "10.0.0.32", "fd00::33"
WEB_CONFIG = "/opt/omero/web/config/01-omero-web.omero"
FILTER = "/etc/omero-redis/nftables.conf"


def site(secrets_dir) -> dict:
    data = {"omero_secrets_dir": str(secrets_dir)}
    return {"redis": (("omero_redis",), {"omero_address": REDIS, **data}),
            "web1": (("omero_web",), {"omero_address": WEB1, **data}),
            "web2": (("omero_web",), {"omero_address": WEB2, **data}),
            "web6": (("omero_web",), {"omero_address": WEB6, **data})}


@pytest.fixture(scope="module", params=["debian12", "ubuntu22.04", "rocky9"])
def farm(request, deploy, tmp_path_factory):
    secrets_dir = tmp_path_factory.mktemp("redis-secrets")
    # Every step redone when its sources changed (a fresh host's files are all new) is planned.
    changed = {re.compile(r" -newer "): ["changed"]}
    return request.param, secrets_dir, deploy(site(secrets_dir), os_name=request.param, responses=changed)


def kept(secrets_dir, suffix: str) -> str:
    [path] = secrets_dir.glob(f"*-{suffix}")
    return path.read_text().strip()


def config_value(run, key: str) -> str:
    return re.search(rf"^config set (?:-- )?{re.escape(key)} '?(.*?)'?$", run.uploads[WEB_CONFIG], re.M).group(1)


def test_redis_host_gets_redis_and_its_filter_only(farm):
    os_name, _, runs = farm
    run = runs["redis"]
    assert {"redis-server" if os_name != "rocky9" else "redis", "nftables"} <= installed_packages(run)
    assert not [op for op in run.ops if re.search(r"OMERO|nginx|venv|PostgreSQL", op)]
    unit = "redis" if os_name == "rocky9" else "redis-server"
    drop_in = run.uploads[f"/etc/systemd/system/{unit}.service.d/omero-redis-filter.conf"]
    assert "Requires=omero-redis-filter.service\nAfter=omero-redis-filter.service" in drop_in
    # The filter is loaded before Redis (re)starts, and Redis is started by its own unit.
    load = next(i for i, c in enumerate(run.commands) if "reload-or-restart omero-redis-filter.service" in c)
    start = run.commands.index(f"systemctl start {unit}.service")
    assert load < start


def test_redis_configuration(farm):
    _, secrets_dir, runs = farm
    conf = runs["redis"].uploads["/etc/redis/redis.conf"]
    password = kept(secrets_dir, "redis-password")
    assert "bind 127.0.0.1 10.0.0.30\n" in conf and "protected-mode yes\n" in conf
    assert "user default off resetpass -@all\n" in conf
    account = re.search(r"^user omero-web on #([0-9a-f]{64}) (.*)$", conf, re.M)
    assert account.group(1) == hashlib.sha256(password.encode()).hexdigest()
    assert account.group(2).endswith("-@admin -@dangerous")
    assert password not in conf
    for run in runs.values():
        assert not [c for c in run.commands + run.raw_commands if password in c]


def test_filter_admits_the_web_nodes_only(farm):
    _, _, runs = farm
    rules = runs["redis"].uploads[FILTER]
    assert rules.index("table inet omero_redis\ndelete table inet omero_redis\n") < rules.index("chain input")
    assert "tcp dport 6379 ip saddr { 10.0.0.31, 10.0.0.32 } accept" in rules
    assert "tcp dport 6379 ip6 saddr { fd00::33 } accept" in rules
    assert rules.rstrip().endswith("tcp dport 6379 drop\n\t}\n}")


def test_web_nodes_share_sessions_in_redis(farm):
    _, secrets_dir, runs = farm
    password, key = kept(secrets_dir, "redis-password"), kept(secrets_dir, "web-secret-key")
    assert len(key) >= 50 and re.fullmatch(r"[A-Za-z0-9_-]+", key)
    for name in ("web1", "web2", "web6"):
        run = runs[name]
        assert config_value(run, "omero.web.session_engine") == "django.contrib.sessions.backends.cache"
        assert json.loads(config_value(run, "omero.web.caches")) == {"default": {
            "BACKEND": "django_redis.cache.RedisCache", "LOCATION": "redis://10.0.0.30:6379/0",
            "OPTIONS": {"USERNAME": "omero-web", "PASSWORD": password}}}
        assert config_value(run, "omero.web.secret_key") == key
        assert any("django-redis==7.0.0" in c and "redis==8.1.0" in c for c in run.commands)
        assert not [c for c in run.commands + run.raw_commands if password in c or key in c]


def test_without_a_redis_host_web_unchanged(deploy):
    run = deploy({"web": (("omero_web",), {})})["web"]
    config = run.uploads[WEB_CONFIG]
    assert "session_engine" not in config and "caches" not in config and "secret_key" not in config
    assert not [c for c in run.commands if "django-redis" in c]


def test_redis_on_a_web_node_is_reached_over_loopback(deploy, tmp_path):
    runs = deploy({"both": (("omero_web", "omero_redis"), {"omero_secrets_dir": str(tmp_path)})}, os_name="debian12")
    run = runs["both"]
    assert "bind 127.0.0.1\n" in run.uploads["/etc/redis/redis.conf"]
    assert json.loads(config_value(run, "omero.web.caches"))["default"]["LOCATION"] == "redis://127.0.0.1:6379/0"
    assert "saddr" not in run.uploads[FILTER]


@pytest.mark.parametrize("os_name", SUPPORTED_OSES)
def test_every_os_plans_a_redis_host(deploy, tmp_path, os_name):
    runs = deploy(site(tmp_path), os_name=os_name)
    assert "/etc/redis/redis.conf" in runs["redis"].uploads


def test_refused_without_ip_addresses(deploy, tmp_path):
    hosts = site(tmp_path)
    hosts["web2"] = (("omero_web",), {"omero_address": "web2.lab.example.org", "omero_secrets_dir": str(tmp_path)})
    with pytest.raises(OmeroOptionError, match=r"omero_address.*web2\.lab\.example\.org.*not an IP address"):
        deploy(hosts, execute=False)


def test_refused_with_two_redis_hosts_or_without_systemd(deploy, tmp_path):
    hosts = site(tmp_path)
    hosts["web1"] = (("omero_web", "omero_redis"), hosts["web1"][1])
    with pytest.raises(OmeroDeployError, match="group omero_redis has 2 hosts"):
        deploy(hosts, execute=False)
    with pytest.raises(OmeroDeployError, match="needs systemd as PID 1"):
        deploy({"redis": (("omero_redis",), {"omero_secrets_dir": str(tmp_path)})}, pid1="bash", execute=False)


@pytest.mark.parametrize(("virt", "in_container"), [("podman", True), ("none", False)])
def test_redis_unit_sandbox_kept_but_in_a_container(deploy, tmp_path, virt, in_container):
    runs = deploy(site(tmp_path), os_name="debian12", responses={re.compile(r"systemd-detect-virt"): [virt]})
    drop_in = runs["redis"].uploads["/etc/systemd/system/redis-server.service.d/omero-redis-filter.conf"]
    assert ("ProtectProc=default" in drop_in) == in_container

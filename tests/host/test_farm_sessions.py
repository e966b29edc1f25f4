"""Shared sessions (omero_redis) on the farm (tests/host/farm.py): a session written on one
web node is read on every other, with Django's session store as each node has it configured;
Redis answers only the web nodes, only with the password, and never an administrative command."""

import shlex
import socket

import pytest

from .audit import assert_clean
from .checks import secret
from .farm import BASE
from .testhosts import SUBNET, SystemdHost, host_data, hosts_with_changes, pyinfra, write_inventory

OMERODIR, VENV = "/opt/omero/web/OMERO.web", "/opt/omero/web/venv3"
# Django's session store as the node's OMERO.web loads it (its SESSION_ENGINE, CACHES, SECRET_KEY).
SESSION = """
import sys
from importlib import import_module
import django
django.setup()
from django.conf import settings
store = import_module(settings.SESSION_ENGINE).SessionStore
print(settings.SESSION_ENGINE, settings.CACHES["default"]["BACKEND"])
if sys.argv[1] == "write":
    session = store()
    session["probe"] = sys.argv[2]
    session.save()
    print(session.session_key)
else:
    print(store(session_key=sys.argv[2]).get("probe", "(none)"))
"""
# A Redis client (the web venv's redis-py): each command's answer or error.
CLIENT = """
import sys
import redis
host, user, password = sys.argv[1:4]
client = redis.Redis(host=host, port=6379, username=user or None, password=password or None,
                     socket_timeout=5, socket_connect_timeout=5)
for command in sys.argv[4:]:
    try:
        print(command, "->", client.execute_command(*command.split()))
    except redis.exceptions.RedisError as error:
        print(command, "->", type(error).__name__)
"""
ADMINISTRATIVE = ("CONFIG GET *", "CONFIG SET protected-mode no", "FLUSHALL", "FLUSHDB", "KEYS *", "ACL LIST",
                  "SHUTDOWN", "DEBUG SLEEP 0", "MODULE LIST", "SAVE", "CLIENT LIST", "EVAL return 1 0")


def on_web_node(node, script: str, *args: str) -> str:
    """``script`` run by the web venv's python as the web user, as OMERO.web runs."""
    command = (f"cd {OMERODIR} && runuser -u omero-web -- env HOME=/var/lib/omero-web OMERODIR={OMERODIR} "
               f"DJANGO_SETTINGS_MODULE=omeroweb.settings {VENV}/bin/python -c {shlex.quote(script)} "
               + " ".join(shlex.quote(arg) for arg in args))
    return node.run(command).stdout


def redis_answers(node, target, *commands: str, user: str = "", password: str = "") -> dict[str, str]:
    output = on_web_node(node, CLIENT, target.address, user, password, *commands)
    return dict(line.split(" -> ", 1) for line in output.splitlines())


def can_connect(host, target) -> bool:
    return host.run(f"timeout 5 bash -c '</dev/tcp/{target.address}/6379'", check=False).returncode == 0


def test_a_session_written_on_one_node_is_read_on_every_other(farm):
    for writer in farm.web:
        value = f"written on {writer.name}"
        engine, key = on_web_node(writer, SESSION, "write", value).splitlines()
        assert engine == "django.contrib.sessions.backends.cache django_redis.cache.RedisCache"
        for reader in farm.web:
            assert on_web_node(reader, SESSION, "read", key).splitlines()[1] == value, (writer.name, reader.name)


def test_redis_needs_the_password(farm):
    web, password = farm.web[0], secret(farm.secrets_dir, "redis-password")
    assert redis_answers(web, farm.redis, "PING") == {"PING": "AuthenticationError"}
    assert redis_answers(web, farm.redis, "PING", user="omero-web", password="not-the-password") == {
        "PING": "AuthenticationError"}
    assert redis_answers(web, farm.redis, "PING", user="default", password=password) == {
        "PING": "AuthenticationError"}
    assert redis_answers(web, farm.redis, "PING", "SET farm-probe 1", "GET farm-probe", "DEL farm-probe",
                         user="omero-web", password=password) == {
        "PING": "True", "SET farm-probe 1": "True", "GET farm-probe": "b'1'", "DEL farm-probe": "1"}


def test_web_account_cannot_run_administrative_commands(farm):
    password = secret(farm.secrets_dir, "redis-password")
    answers = redis_answers(farm.web[0], farm.redis, *ADMINISTRATIVE, user="omero-web", password=password)
    # Refused by the account's rules (NOPERM); DEBUG by Redis 7 itself first (enable-debug-command no).
    assert answers == {**dict.fromkeys(ADMINISTRATIVE, "NoPermissionError"), "DEBUG SLEEP 0": "ResponseError"}


def test_only_web_nodes_reach_redis(farm):
    rules = farm.redis.run("nft list table inet omero_redis").stdout
    assert all(web.address in rules for web in farm.web)
    for web in farm.web:
        assert can_connect(web, farm.redis), web.name
    # Redis listens on the network, yet neither another host of the site nor this machine gets in.
    assert farm.redis.testinfra.socket(f"tcp://{farm.redis.address}:6379").is_listening
    for outsider in (farm.proxy, farm.database):
        assert not can_connect(outsider, farm.redis), outsider.name
    with pytest.raises(OSError):
        socket.create_connection((farm.redis.address, 6379), timeout=5).close()


def test_a_table_gone_is_loaded_again_without_restarting_redis(farm):
    """Our table gone from the kernel (a site's "flush ruleset", a slip by hand): the next run
    loads it again, and Redis, with the sessions, runs on."""
    def redis_pid() -> str:
        return farm.redis.run("systemctl show -p MainPID --value redis-server.service").stdout.strip()

    before = redis_pid()
    farm.redis.run("nft delete table inet omero_redis")
    assert can_connect(farm.proxy, farm.redis)  # the table is what keeps other hosts out
    farm.deploy()
    assert not can_connect(farm.proxy, farm.redis)
    assert redis_pid() == before != "0"


def test_no_secret_readable_by_others(farm):
    for host in (farm.redis, *farm.web):
        assert_clean(host, farm.secrets_dir)


def test_second_run_changes_nothing(farm):
    assert hosts_with_changes(farm.inventory) == {}


def test_refused_where_nftables_cannot_load_the_filter(farm, tmp_path):
    """A Redis host whose root may not change the firewall (a container without CAP_NET_ADMIN):
    the deploy stops, saying why, with Redis stopped."""
    redis = SystemdHost(f"farm{BASE}-redis-nocap", f"{SUBNET}.{BASE + 8}")
    try:
        redis.create()
        inventory = write_inventory(tmp_path / "nocap.py", {"omero_redis": [redis]},
                                    {redis.name: host_data(redis, farm.secrets_dir)})
        result = pyinfra(inventory)
        assert result.returncode != 0
        assert "nftables refused the address filter of table inet omero_redis" in result.stdout + result.stderr
        assert redis.run("systemctl is-active redis-server.service", check=False).stdout.strip() != "active"
    finally:
        redis.destroy()

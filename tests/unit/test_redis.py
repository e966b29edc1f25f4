"""Shared sessions (omero_redis), table-driven: who reaches Redis at which address, and what
OMERO.web is told."""

import pytest

from deploys import redis, secrets, topology
from deploys.errors import OmeroDeployError, OmeroOptionError

pytestmark = pytest.mark.unit


class Peer:
    def __init__(self, name, address=None, groups=()):
        self.name, self.groups = name, set(groups)
        self.data = {} if address is None else {"omero_address": address}


class Inventory:
    def __init__(self, *peers):
        self.peers = peers

    def get_group(self, name, default=None):
        return [peer for peer in self.peers if name in peer.groups] or default


class Options:
    def __init__(self, secrets_dir):
        self.secrets_dir = str(secrets_dir)


REDIS = Peer("redis", "10.0.0.30", {topology.REDIS})
WEB1, WEB2 = Peer("web1", "10.0.0.31", {topology.WEB}), Peer("web2", "fd00::32", {topology.WEB})
BOTH = Peer("both", "10.0.0.33", {topology.WEB, topology.REDIS})


@pytest.mark.parametrize(("host", "peers", "expected"), [
    pytest.param(REDIS, (REDIS, WEB1, WEB2), {"redis_clients": ("10.0.0.31", "fd00::32"),
                                              "redis_bind": ("127.0.0.1", "10.0.0.30")}, id="redis host"),
    pytest.param(WEB2, (REDIS, WEB1, WEB2), {"redis_address": "10.0.0.30"}, id="web node"),
    pytest.param(BOTH, (BOTH,), {"redis_address": "127.0.0.1", "redis_clients": (), "redis_bind": ("127.0.0.1",)},
                 id="Redis on the only web node: loopback alone"),
    pytest.param(BOTH, (BOTH, WEB1), {"redis_address": "127.0.0.1", "redis_clients": ("10.0.0.31",),
                                      "redis_bind": ("127.0.0.1", "10.0.0.33")}, id="Redis on one of two web nodes"),
    pytest.param(REDIS, (REDIS,), {"redis_clients": (), "redis_bind": ("127.0.0.1",)}, id="no web node"),
])
def test_who_reaches_redis(tmp_path, host, peers, expected):
    extra = topology.redis(host, Inventory(*peers), Options(tmp_path), frozenset(host.groups))
    assert {key: value for key, value in extra.items() if key.startswith("redis_") and key != "redis_password"} \
        == expected
    assert extra["redis_password"] == secrets.generated(str(tmp_path), "both-redis-password" if host is BOTH
                                                        else "redis-redis-password")
    assert ("web_secret_key" in extra) == (topology.WEB in host.groups)


@pytest.mark.parametrize(("host", "peers"), [
    pytest.param(Peer("db", "10.0.0.40", {topology.DATABASE}), (REDIS, WEB1), id="neither web nor Redis"),
    pytest.param(WEB1, (WEB1,), id="no Redis host"),
])
def test_nothing_without_a_part_in_it(tmp_path, host, peers):
    assert topology.redis(host, Inventory(*peers), Options(tmp_path), frozenset(host.groups)) == {}


@pytest.mark.parametrize(("host", "peers", "error", "match"), [
    pytest.param(WEB1, (Peer("redis", "redis.lab", {topology.REDIS}), WEB1), OmeroOptionError,
                 r"omero_address.*'redis.lab', not an IP address, and Redis binds to it", id="Redis host by name"),
    pytest.param(REDIS, (REDIS, Peer("web9", "web9.lab", {topology.WEB})), OmeroOptionError,
                 r"'web9.lab', not an IP address, and the Redis host admits", id="web node by name"),
    pytest.param(WEB1, (REDIS, Peer("r2", "10.0.0.34", {topology.REDIS}), WEB1), OmeroDeployError,
                 "group omero_redis has 2 hosts", id="two Redis hosts"),
])
def test_refused(tmp_path, host, peers, error, match):
    with pytest.raises(error, match=match):
        topology.redis(host, Inventory(*peers), Options(tmp_path), frozenset(host.groups))


class Settings:
    def __init__(self, address):
        self.redis_address, self.redis_password = address, "pass/word"


@pytest.mark.parametrize(("address", "location"), [
    ("10.0.0.30", "redis://10.0.0.30:6379/0"),
    ("fd00::30", "redis://[fd00::30]:6379/0"),
    ("127.0.0.1", "redis://127.0.0.1:6379/0"),
])
def test_caches(address, location):
    assert redis.caches(Settings(address)) == {"default": {
        "BACKEND": "django_redis.cache.RedisCache", "LOCATION": location,
        "OPTIONS": {"USERNAME": "omero-web", "PASSWORD": "pass/word"}}}


def test_secret_key_long_and_quotable(tmp_path):
    key = secrets.generated(str(tmp_path), "site-web-secret-key", length=48)
    assert len(key) == 64 and key.isascii() and "'" not in key
    assert secrets.generated(str(tmp_path), "site-web-secret-key", length=48) == key

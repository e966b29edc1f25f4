"""Redis for the web nodes' shared sessions (omero_redis): the distribution's server with our
whole configuration, an account for the web nodes that can only read and write keys, and an
nftables table of our own admitting only the web nodes' addresses to its port."""

import hashlib
import ipaddress
import shlex

from pyinfra import host

from facts.omero import InContainer

from . import kit, services
from .operations import nft_table_loaded, refreshed, systemd_reloaded

PORT = 6379
# The web nodes' Redis account (an ACL user, not a Unix one).
USER = "omero-web"
FILTER_UNIT = "omero-redis-filter"
FILTER_TABLE = "inet omero_redis"


def caches(settings) -> dict:
    """OMERO.web's omero.web.caches: django-redis at the Redis host, as the web nodes' account."""
    host = f"[{settings.redis_address}]" if ":" in settings.redis_address else settings.redis_address
    return {"default": {"BACKEND": "django_redis.cache.RedisCache", "LOCATION": f"redis://{host}:{PORT}/0",
                        "OPTIONS": {"USERNAME": USER, "PASSWORD": settings.redis_password}}}


def _filter(settings) -> list[str]:
    """The address filter, loaded (whole, replacing our table) before Redis starts; returns its files."""
    kit.directory(name="Create Redis's address filter directory", path=settings.redis_filter_dir,
                  user="root", group="root", mode="755")
    clients = [ipaddress.ip_address(address) for address in settings.redis_clients]
    kit.template("redis/nftables.conf.j2", settings.redis_filter_file, port=PORT, table=FILTER_TABLE,
                 ipv4=[str(a) for a in clients if a.version == 4], ipv6=[str(a) for a in clients if a.version == 6])
    unit_file = f"/etc/systemd/system/{FILTER_UNIT}.service"
    kit.template("systemd/omero-redis-filter.service.j2", unit_file, filter_file=settings.redis_filter_file,
                 table=FILTER_TABLE, redis_unit=f"{settings.platform.redis_service}.service")
    systemd_reloaded(name=f"Reload systemd's {FILTER_UNIT} unit", units=[f"{FILTER_UNIT}.service"],
                     files=[unit_file])
    # Redis needs the filter: started only once it is loaded, stopped with it.
    drop_in = services.drop_in(f"{settings.platform.redis_service}.service", "omero-redis-filter",
                               "systemd/redis-after-filter.conf.j2", filter_unit=f"{FILTER_UNIT}.service",
                               in_container=host.get_fact(InContainer))
    unit, redis_unit = shlex.quote(f"{FILTER_UNIT}.service"), shlex.quote(f"{settings.platform.redis_service}.service")
    # reload: the table replaced without restarting Redis (its Requires= would). Refused, Redis
    # (which its package may have started) is stopped: it would answer without the filter.
    why = ("nftables refused the address filter of table inet omero_redis (see above), so Redis, "
           "which would be open to every host, is stopped; a container needs CAP_NET_ADMIN")
    load = (f"systemctl reload-or-restart {unit} || {{ journalctl -u {unit} -n 5 --no-pager -o cat >&2; "
            f"systemctl stop {redis_unit}; echo {shlex.quote(why)} >&2; exit 1; }}")
    refreshed(name="Load Redis's address filter (nftables table inet omero_redis)", commands=[load],
              sources=[settings.redis_filter_file, unit_file], stamp=settings.stamp("redis-filter-loaded"))
    nft_table_loaded(name="Reload Redis's address filter where the table is gone", table=FILTER_TABLE, load=load)
    return [drop_in]


def deploy(settings) -> None:
    platform = settings.platform
    kit.packages(settings, "Install nftables", ["nftables"])
    # The filter and Redis's drop-in first: the package starts Redis, then already behind the filter.
    restart_sources = _filter(settings)
    kit.packages(settings, "Install Redis", [platform.redis_package])
    # The redis account reads its configuration, and may not change it (Debian's package makes
    # the directory its own, 2770: setgid, which chmod keeps on a directory, so kept here too).
    kit.directory(name="Create Redis's configuration directory", path="/etc/redis", user="root",
                  group="redis", mode="2750")
    kit.secret_template(
        "redis/redis.conf.j2", platform.redis_conf, user="root", group="redis", mode="640",
        bind=settings.redis_bind, port=PORT, pidfile=platform.redis_pidfile, logfile=platform.redis_log,
        user_name=USER, password_sha256=hashlib.sha256(settings.redis_password.encode()).hexdigest())
    # The distribution's unit (Type=notify): started means ready.
    services.start(settings, platform.redis_service, restart_sources=[platform.redis_conf, *restart_sources])

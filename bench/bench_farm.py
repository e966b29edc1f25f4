"""Requests per second through the front proxy against one web host alone, and the cache's effect.

    .venv/bin/python bench/bench_farm.py [--seconds S] [--clients N]

On fresh Debian 12 systemd test hosts, in one pyinfra run: a front proxy (omero_proxy)
with two web nodes behind it, and beside them one web host alone (omero_web, its own
nginx in front of gunicorn, as an all-in-one site has it). From this machine, N client
threads (keep-alive, one request after another) for S seconds each:

- a static file: from the web host alone (its nginx reads it from disk), through the proxy
  from its cache (HIT), and through the proxy with the cache missed on purpose (a query
  string new on every request: the proxy asks a node each time);
- the login page (rendered by OMERO.web, never cached): the web host alone, and through the
  proxy over its two nodes.

Prints a Markdown table for docs/benchmarks.md. The client runs on the same 2 cores as the
hosts: the figures compare the paths, they are no capacity of real machines.
"""

import argparse
import itertools
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.host.testhosts import SUBNET, SystemdHost, deploy, host_data, remove_leftovers, write_inventory  # noqa: E402

STATIC = "/static/webgateway/css/ome.body.css"
LOGIN = "/webclient/login/"


def rate(url: str, seconds: float, clients: int, unique: bool = False, expect: str | None = None) -> float:
    """Requests per second answered 200 (with ``expect`` as X-Cache-Status when given);
    ``unique``: a new query string on every request."""
    counter, done, stop = itertools.count(), [], threading.Event()

    def client():
        session, answered = requests.Session(), 0
        while not stop.is_set():
            response = session.get(f"{url}?n={next(counter)}" if unique else url, timeout=30)
            assert response.status_code == 200, (url, response.status_code)
            if expect:
                assert response.headers.get("X-Cache-Status") == expect, (url, response.headers)
            answered += 1
        done.append(answered)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    started = time.perf_counter()
    time.sleep(seconds)
    stop.set()
    for thread in threads:
        thread.join()
    return sum(done) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--base", type=int, default=150,
                        help="the last byte of the first host's address (the farm tests' site: 100 and on)")
    args = parser.parse_args()
    remove_leftovers()
    proxy = SystemdHost("bench-proxy", f"{SUBNET}.{args.base}", publish=(80,))
    nodes = [SystemdHost(f"bench-web{n}", f"{SUBNET}.{args.base + n}") for n in (1, 2)]
    alone = SystemdHost("bench-alone", f"{SUBNET}.{args.base + 5}")
    hosts = [proxy, *nodes, alone]
    work = Path(tempfile.mkdtemp(prefix="bench-farm-"))
    try:
        for host in hosts:
            host.create()
        # Two sites in one inventory would share omero_web: the lone host gets a run of its own.
        farm = write_inventory(work / "farm.py", {"omero_proxy": [proxy], "omero_web": nodes},
                               {host.name: host_data(host, work) for host in (proxy, *nodes)})
        single = write_inventory(work / "alone.py", {"omero_web": [alone]}, {alone.name: host_data(alone, work)})
        deploy(farm, proxy, *nodes)
        deploy(single, alone)
        through, direct = f"http://127.0.0.1:{proxy.published[80]}", f"http://{alone.address}"
        requests.get(through + STATIC, timeout=30)  # the cache filled
        rows = [
            ("static file, web host alone", rate(direct + STATIC, args.seconds, args.clients)),
            ("static file, proxy cache HIT", rate(through + STATIC, args.seconds, args.clients, expect="HIT")),
            ("static file, proxy cache missed", rate(through + STATIC, args.seconds, args.clients, unique=True,
                                                     expect="MISS")),
            ("login page, web host alone", rate(direct + LOGIN, args.seconds, args.clients)),
            ("login page, proxy over 2 nodes", rate(through + LOGIN, args.seconds, args.clients)),
        ]
    finally:
        for host in hosts:
            host.destroy()
    print(f"\n{args.clients} clients, {args.seconds:g} s each\n")
    print("| requests | per second | / web host alone |\n|---|---|---|")
    alone_rates = {"static": rows[0][1], "login": rows[3][1]}
    for name, value in rows:
        print(f"| {name} | {value:.0f} | {value / alone_rates[name.split()[0]]:.2f} |")


if __name__ == "__main__":
    main()

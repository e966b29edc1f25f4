"""Run the pyinfra CLI with a clock on every fact and operation, for bench_deploy.py.

    python bench/profile_pyinfra.py OUTPUT.json <pyinfra arguments...>

Writes, per fact class and per operation name, how many times it ran and the seconds it
took (wall time on the controller: the command on the host and the round trip to it).
"""

import json
import sys
import time
from collections import defaultdict

from pyinfra.api import facts, operations
from pyinfra_cli.main import main

timings: dict[str, dict[str, list[float]]] = {"fact": defaultdict(list), "operation": defaultdict(list)}


def clocked_fact(state, host, cls, *args, **kwargs):
    start = time.perf_counter()
    try:
        return original_fact(state, host, cls, *args, **kwargs)
    finally:
        timings["fact"][f"{cls.__module__.removeprefix('pyinfra.facts.')}.{cls.__name__}"].append(
            time.perf_counter() - start)


def clocked_operation(state, host, op_hash):
    start = time.perf_counter()
    try:
        return original_operation(state, host, op_hash)
    finally:
        names = state.get_op_meta(op_hash).names
        timings["operation"][", ".join(sorted(names))].append(time.perf_counter() - start)


original_fact, facts._get_fact = facts._get_fact, clocked_fact
original_operation, operations._run_host_op = operations._run_host_op, clocked_operation

if __name__ == "__main__":
    output = sys.argv.pop(1)
    sys.argv[0] = "pyinfra"
    try:
        main()
    finally:
        with open(output, "w") as out:
            json.dump({kind: {name: [len(times), sum(times)] for name, times in table.items()}
                       for kind, table in timings.items()}, out, indent=1)

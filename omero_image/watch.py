#!/usr/bin/python3
"""omero-image-watch: supervisord's event listener in the image (omero_image/entrypoint.py).

    watch.py RUN LOG

A program that keeps failing stops the container instead of restarting forever behind a
"running" container: one that supervisord gives up on (FATAL: it could not start it
``startretries`` times) or one that keeps exiting after it started (EXITS unexpected exits
within WINDOW seconds; startretries never counts those). The reason and the program's last
log lines go to RUN/failed, and supervisord is told to stop; the entrypoint, PID 1 above
it, prints them and exits non-zero.
"""

import os
import signal
import sys
import time
from collections import defaultdict, deque

EXITS, WINDOW = 3, 120.0
LOG_LINES = 15


def fields(text: str) -> dict[str, str]:
    """supervisord's ``key:value key:value`` header or payload line as a dict."""
    return dict(token.split(":", 1) for token in text.split() if ":" in token)


class Watch:
    """The failures seen so far; ``event`` answers why the container must stop, or None."""

    def __init__(self, exits: int = EXITS, window: float = WINDOW):
        self.exits, self.window = exits, window
        self.seen: dict[str, deque] = defaultdict(deque)

    def event(self, name: str, payload: dict[str, str], now: float) -> str | None:
        program = payload.get("processname", "?")
        if name == "PROCESS_STATE_FATAL":
            return f"{program} could not be started (supervisord gave up on it)"
        if name == "PROCESS_STATE_EXITED" and payload.get("expected") == "0":
            times = self.seen[program]
            times.append(now)
            while times and now - times[0] > self.window:
                times.popleft()
            if len(times) >= self.exits:
                return f"{program} exited unexpectedly {len(times)} times within {self.window:.0f} s"
        return None


def tail(path: str, lines: int = LOG_LINES) -> list[str]:
    """The last ``lines`` lines of ``path`` (its last 64 KiB at most), or none."""
    try:
        with open(path, "rb") as handle:
            handle.seek(max(0, os.fstat(handle.fileno()).st_size - 65536))
            return handle.read().decode("utf-8", "replace").splitlines()[-lines:]
    except OSError:
        return []


def report(run: str, log: str, program: str, reason: str) -> str:
    """What the container's output says when a program stops it."""
    lines = tail(os.path.join(log, f"{program}.log"))
    text = f"{reason}: stopping the container.\n"
    if lines:
        text += f"last lines of {log}/{program}.log:\n" + "".join(f"    {line}\n" for line in lines)
    return text


def stop(run: str, log: str, program: str, reason: str) -> None:
    """RUN/failed written whole, then supervisord told to stop everything and exit."""
    text = report(run, log, program, reason)
    with open(os.path.join(run, "failed.partial"), "w", encoding="utf-8") as handle:
        handle.write(text)
    os.rename(os.path.join(run, "failed.partial"), os.path.join(run, "failed"))
    print(text, file=sys.stderr, flush=True)  # into this listener's own log
    os.kill(os.getppid(), signal.SIGTERM)


def main(run: str, log: str) -> None:
    watch, stopping = Watch(), False
    while True:
        sys.stdout.write("READY\n")
        sys.stdout.flush()
        line = sys.stdin.readline()
        if not line:  # supervisord is gone
            return
        header = fields(line)
        # The payload's first line holds the process's fields.
        payload = fields(sys.stdin.read(int(header.get("len", 0))).split("\n", 1)[0])
        reason = watch.event(header.get("eventname", ""), payload, time.monotonic())
        if reason and not stopping:
            stopping = True
            stop(run, log, payload.get("processname", "?"), reason)
        sys.stdout.write("RESULT 2\nOK")
        sys.stdout.flush()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])

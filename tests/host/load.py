"""A bounded load on a site from this machine, while something happens to it: a few threads,
each sending GETs one after another with a pause, until told to stop or the request budget
is spent. Every failed request is kept with why it failed."""

import threading
import time
from dataclasses import dataclass, field

import requests

MAX_THREADS = 50
MAX_REQUESTS = 5000


@dataclass
class Load:
    """GETs of ``paths`` (in turn) from ``base`` (http://127.0.0.1:PORT), ``threads`` at a time,
    each thread pausing ``pause`` seconds between its requests; at most ``budget`` in all."""

    base: str
    paths: tuple[str, ...]
    threads: int = 10
    pause: float = 0.2
    budget: int = 3000
    timeout: float = 30
    headers: dict[str, str] = field(default_factory=dict)
    sent: int = 0
    failures: list[str] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    exhausted: bool = False  # the budget ran out before the load was stopped: it did not cover it all
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _workers: list[threading.Thread] = field(default_factory=list)

    def __post_init__(self):
        assert 1 <= self.threads <= MAX_THREADS and 1 <= self.budget <= MAX_REQUESTS

    def _take(self) -> int | None:
        """The next request's number, or None once stopped or the budget is spent."""
        with self._lock:
            if self._stop.is_set() or self.sent >= self.budget:
                return None
            self.sent += 1
            return self.sent

    def _work(self) -> None:
        session = requests.Session()
        while (number := self._take()) is not None:
            path = self.paths[number % len(self.paths)]
            try:
                response = session.get(self.base + path, headers=self.headers, timeout=self.timeout,
                                       allow_redirects=False)
                outcome = response.status_code
                # Every path a browser may ask for: an error of any kind is a lost request.
                failed = None if outcome < 400 else f"{path}: HTTP {outcome} {response.reason}"
            except requests.RequestException as error:
                outcome, failed = 0, f"{path}: {type(error).__name__}: {error}"
            with self._lock:
                self.statuses[outcome] = self.statuses.get(outcome, 0) + 1
                if failed:
                    self.failures.append(f"request {number} at {time.strftime('%H:%M:%S')}: {failed}")
            self._stop.wait(self.pause)

    def __enter__(self) -> "Load":
        for _ in range(self.threads):
            worker = threading.Thread(target=self._work, daemon=True)
            worker.start()
            self._workers.append(worker)
        return self

    def __exit__(self, *exc) -> None:
        self.exhausted = self.sent >= self.budget and not self._stop.is_set()
        self._stop.set()
        for worker in self._workers:
            worker.join(self.timeout + 5)

    @property
    def completed(self) -> int:
        return sum(self.statuses.values())

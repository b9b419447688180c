"""`chimera worker --role all` with a stack sampler: where a worker process's threads spend their time.

    .venv/bin/python benchmarks/sampled_worker.py REPORT.json     (throughput.py --profile starts it)

It runs the same function as `chimera worker --role all` (chimera.cli.runtime.run_worker) in this process,
while a thread samples every other thread's Python stack every 10 ms (sys._current_frames). Threads waiting
for work (the event loop in select, pool threads in their queue, condition waits) are left out, so a sample
is a thread doing something: running Python, or blocked in a C call (a database round trip, a pipe read).
With the GIL, CPU-bound samples of different threads take turns; a blocked call is wall time, not CPU.
SIGUSR1 clears the counts (the benchmark sends it after its warm-up). At SIGTERM the worker stops as
usual and the counts are written to REPORT.json:

  leaf     the package of the innermost frame (pydantic, sqlalchemy, temporalio, ...)
  repo     the innermost frame in this repository (file:function), i.e. which of Chimera's code is on the way
  cumul    every repository function on the stack (cumulative)
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from types import FrameType

ROOT = Path(__file__).resolve().parents[1]
REPO_DIRS = tuple(str(ROOT / d) + os.sep for d in ("activities", "chimera", "workflows", "schemas", "workers"))
IDLE = {
    ("selectors.py", "select"),
    ("threading.py", "wait"),
    ("queue.py", "get"),
    ("thread.py", "_worker"),  # concurrent.futures: a pool thread waiting for its next item
    ("threading.py", "_wait_for_tstate_lock"),
    ("unix_events.py", "_do_waitpid"),  # asyncio's child watcher: a thread per MCP stdio child, in waitpid
}
INTERVAL = 0.01


def package_of(filename: str) -> str:
    for marker in ("site-packages" + os.sep, "lib" + os.sep + "python3"):
        if marker in filename:
            rest = filename.split(marker, 1)[1].lstrip(os.sep)
            if marker.startswith("lib"):
                return "stdlib:" + rest.split(os.sep, 1)[-1].split(os.sep)[0].removesuffix(".py")
            return rest.split(os.sep)[0].removesuffix(".py")
    if filename.startswith(str(ROOT)):
        return "repo:" + filename[len(str(ROOT)) + 1 :].split(os.sep)[0]
    return filename


def repo_name(frame: FrameType) -> str | None:
    filename = frame.f_code.co_filename
    if not filename.startswith(REPO_DIRS):
        return None
    return f"{filename[len(str(ROOT)) + 1 :]}:{frame.f_code.co_name}"


class Sampler:
    def __init__(self) -> None:
        self.samples = 0
        self.busy = 0
        self.leaf: Counter[str] = Counter()
        self.leaf_function: Counter[str] = Counter()
        self.repo: Counter[str] = Counter()
        self.cumul: Counter[str] = Counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sampler", daemon=True)
        self.began = time.monotonic()

    def start(self) -> None:
        self._thread.start()

    def reset(self) -> None:
        self.samples = self.busy = 0
        self.leaf, self.leaf_function, self.repo, self.cumul = Counter(), Counter(), Counter(), Counter()
        self.began = time.monotonic()

    def _run(self) -> None:
        me = threading.get_ident()
        while not self._stop.wait(INTERVAL):
            self.samples += 1
            for ident, frame in sys._current_frames().items():
                if ident != me:
                    self._take(frame)

    def _take(self, top: FrameType) -> None:
        if (Path(top.f_code.co_filename).name, top.f_code.co_name) in IDLE:
            return
        self.busy += 1
        self.leaf[package_of(top.f_code.co_filename)] += 1
        self.leaf_function[f"{Path(top.f_code.co_filename).name}:{top.f_code.co_name}"] += 1
        innermost: str | None = None
        seen: set[str] = set()
        frame: FrameType | None = top
        while frame is not None:
            name = repo_name(frame)
            if name is not None:
                innermost = innermost or name
                seen.add(name)
            frame = frame.f_back
        self.repo[innermost or "(no repository frame)"] += 1
        self.cumul.update(seen)

    def report(self, path: Path) -> None:
        self._stop.set()
        top = 25
        data = {
            "seconds": time.monotonic() - self.began,
            "ticks": self.samples,
            "busy_thread_samples": self.busy,
            "leaf": self.leaf.most_common(top),
            "leaf_function": self.leaf_function.most_common(top),
            "repo": self.repo.most_common(top),
            "cumul": self.cumul.most_common(top),
        }
        path.write_text(json.dumps(data, indent=1))


def main() -> None:
    from chimera.cli.runtime import run_worker

    report = Path(sys.argv[1])
    sampler = Sampler()
    signal.signal(signal.SIGUSR1, lambda *_: sampler.reset())
    sampler.start()
    try:
        run_worker("all")
    finally:
        sampler.report(report)
        sys.stdout.flush()
        os._exit(0)  # temporalio's runtime can abort the interpreter at exit (sdk-python issue #300)


if __name__ == "__main__":
    main()

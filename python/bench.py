"""Records per second through `logging` into mhm_log and the standard library's handlers.

Same logger, formatter and record for every handler, in one run; 1 and 4 threads. Files
rotate every 5 MiB (ours and RotatingFileHandler), so the bytes on disk stay bounded.

    .venv/bin/python python/bench.py [RECORDS_PER_THREAD]
"""

import logging
import logging.handlers
import os
import sys
import tempfile
import threading
import time

# The installed wheel, not the sources beside this script (they lack the extension).
sys.path = [p for p in sys.path if os.path.abspath(p or ".") != os.path.dirname(os.path.abspath(__file__))]
import mhm_log  # noqa: E402

FMT = logging.Formatter("%(asctime)s - %(name)s - %(levelname)s - %(message)s",
                        datefmt="%Y-%m-%d %H:%M:%S")


def handlers(d):
    yield "FileHandler", logging.FileHandler(os.path.join(d, "file.log"))
    yield "RotatingFileHandler", logging.handlers.RotatingFileHandler(
        os.path.join(d, "rot.log"), maxBytes=5 << 20, backupCount=7)
    yield "TimedRotatingFileHandler", logging.handlers.TimedRotatingFileHandler(
        os.path.join(d, "timed.log"), when="midnight", backupCount=7)
    for mode in ("direct", "buffered", "staged"):
        yield f"mhm_log {mode}", mhm_log.RotatingFileHandler(
            os.path.join(d, f"mhm_{mode}.log"), write_mode=mode, max_bytes=5 << 20,
            min_rotate_age_secs=0)


def run(handler, threads, n):
    handler.setFormatter(FMT)
    log = logging.getLogger(f"bench.{id(handler)}")
    log.handlers[:] = [handler]
    log.setLevel(logging.INFO)
    log.propagate = False

    def work():
        for i in range(n):
            log.info("user %s delivered message %d in %d ms", "u1001", i, i % 90)

    ts = [threading.Thread(target=work) for _ in range(threads)]
    start = time.perf_counter()
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    handler.flush()
    elapsed = time.perf_counter() - start
    handler.close()
    return threads * n / elapsed


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 50_000
    for threads in (1, 4):
        with tempfile.TemporaryDirectory() as d:
            results = [(name, run(h, threads, n)) for name, h in handlers(d)]
        base = dict(results)["FileHandler"]
        print(f"\n{threads} thread(s), {n} records each")
        print(f"{'handler':<26} {'records/s':>12} {'vs FileHandler':>15}")
        for name, rate in results:
            print(f"{name:<26} {rate:>12,.0f} {rate / base:>14.2f}x")


if __name__ == "__main__":
    main()

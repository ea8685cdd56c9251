"""The server under concurrent load: N clients posting articles at once to `python -m deployment.serving`, whose LLM
answers at once (the tests' scripted fake), so what is measured is the server's own capacity: throughput, latency
percentiles, errors, and whether its memory grows.

    python benchmarks/benchmark_load.py [--clients 16] [--requests 320]

Run it in `make shell`. It borrows the tests' fake LLM and server helpers; the server and its database live in a
temporary folder, with the server's default settings (NEWS_READER_SERVING_THREADS workers).
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil
import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from news_reader.percentiles import percentile  # noqa: E402
from tests.conftest import ARTICLE, business_llm, running_server  # noqa: E402

_sessions = threading.local()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=16, help="concurrent clients [16]")
    parser.add_argument("--requests", type=int, default=320, help="requests in all [320]")
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # the fake LLM's line per call
    with tempfile.TemporaryDirectory() as folder, business_llm() as llm, running_server(
            {"NEWS_READER_LLM_BASE_URL": llm.base_url, "NEWS_READER_LLM_MODEL": "fake",
             "PF_DISABLE_TRACING": None,  # the tests turn Prompt flow's tracing off; the server's default is on
             "NEWS_READER_DATABASE_URL": f"sqlite:///{Path(folder) / 'bench.db'}"}, Path(folder) / "server.log") as url:
        server = _server_process()
        requests.post(f"{url}/score", json={"article": ARTICLE}, timeout=60).raise_for_status()  # warm up
        rss_before = server.memory_info().rss
        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=args.clients) as pool:
            results = list(pool.map(lambda _: _score(url), range(args.requests)))
        elapsed = time.perf_counter() - started
        rss_after = server.memory_info().rss
    ms = [seconds * 1000 for ok, seconds in results if ok]
    errors = sum(not ok for ok, _ in results)
    print(f"{args.requests} requests from {args.clients} clients in {elapsed:.1f} s: "
          f"{args.requests / elapsed:.1f} requests/s, p50 {_percentile_ms(ms, 50)}, p95 {_percentile_ms(ms, 95)}, "
          f"{errors} errors; server RSS {rss_before / 2**20:.0f} MiB before, {rss_after / 2**20:.0f} MiB after")


def _score(url: str) -> tuple[bool, float]:
    """One request on this thread's connection: whether it was answered 200, and how long it took."""
    if not hasattr(_sessions, "session"):
        _sessions.session = requests.Session()
    started = time.perf_counter()
    try:
        ok = _sessions.session.post(f"{url}/score", json={"article": ARTICLE}, timeout=120).status_code == 200
    except requests.RequestException:
        ok = False
    return ok, time.perf_counter() - started


def _server_process() -> psutil.Process:
    """The server that running_server started: this process's child running deployment.serving."""
    (server,) = [child for child in psutil.Process().children() if "deployment.serving" in child.cmdline()]
    return server


def _percentile_ms(ms: list[float], p: float) -> str:
    """Of the answered requests' latencies; none when every request failed."""
    return f"{percentile(ms, p):.0f} ms" if ms else "n/a"


if __name__ == "__main__":
    main()

"""What the server adds to the model's own time: requests through `python -m deployment.serving` against an LLM that
answers at once (the tests' scripted fake), so all the time measured is HTTP, checks, Prompt flow's executor,
tracing, logging and the database.

    python benchmarks/benchmark_serving.py [--requests 50]

Run it in `make shell`. It borrows the tests' fake LLM and server helpers; the server and its database live in a
temporary folder.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.conftest import ARTICLE, business_llm, running_server  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=50)
    count = parser.parse_args().requests
    with tempfile.TemporaryDirectory() as folder, business_llm() as llm, running_server(
            {"NEWS_READER_LLM_BASE_URL": llm.base_url, "NEWS_READER_LLM_MODEL": "fake",
             "PF_DISABLE_TRACING": None,  # the tests turn Prompt flow's tracing off; the server's default is on
             "NEWS_READER_DATABASE_URL": f"sqlite:///{Path(folder) / 'bench.db'}"}, Path(folder) / "server.log") as url:
        requests.post(f"{url}/score", json={"article": ARTICLE}, timeout=60).raise_for_status()  # warm up
        seconds = []
        for _ in range(count):
            started = time.perf_counter()
            requests.post(f"{url}/score", json={"article": ARTICLE}, timeout=60).raise_for_status()
            seconds.append(time.perf_counter() - started)
        calls = len(llm.seen) // (count + 1)
    ms = sorted(s * 1000 for s in seconds)
    print(f"{count} requests, {calls} LLM calls each (answered at once): "
          f"mean {statistics.mean(ms):.0f} ms, p50 {ms[len(ms) // 2]:.0f} ms, p95 {ms[int(len(ms) * 0.95) - 1]:.0f} ms")


if __name__ == "__main__":
    main()

"""The local LLM server under the project's own load: per-article latency, batch throughput, cached share of the
prompt tokens and extraction quality, on labelled articles, against whichever server the settings point at.

    python benchmarks/benchmark_local_llm.py run --label new --articles latency --workers 1 --out new-latency.json
    python benchmarks/benchmark_local_llm.py run --label new --articles subset30 --workers 4 --out new-batch.json
    python benchmarks/benchmark_local_llm.py compare old-latency.json new-latency.json ...

Article sets (all from data/eval/full.jsonl, ids 001-300): `latency`, the first ten business articles with two to
four labelled companies; `smoke`, the smoke subset; `subset30`, those ten and every tenth of the other labelled
articles (30 in all). `--workers N` analyses N articles at once (a batch run's PF_WORKER_COUNT); with 1, each
article's wall time is its latency, and a `subset30` record also gives the latency set's median and p95.

Run it in `make shell` with the server up (`news-reader llm start`). Another server is measured the same way by
pointing NEWS_READER_LLM_BASE_URL at it (README, "Performance", has the recipe for llama-cpp-python's).
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from news_reader.evaluation.reference import measure_reference_ms
from news_reader.evaluation.scoring import aggregate, score_line
from news_reader.extraction.errors import NewsReaderError
from news_reader.extraction.pipeline import analyze
from news_reader.percentiles import percentile
from news_reader.settings import LLMSettings

DATA = Path(__file__).resolve().parents[1] / "data"
QUALITY = ("business_accuracy", "company_precision", "company_recall", "direction_accuracy", "grounding_rate",
           "title_match_rate", "summary_rouge_l")


def article_set(name: str) -> list[dict]:
    rows = [json.loads(line) for line in (DATA / "eval" / "full.jsonl").read_text().splitlines()]
    latency = [r for r in rows if r["is_about_business"] and 2 <= len(r["companies"]) <= 4][:10]
    if name == "latency":
        return latency
    if name == "smoke":
        return [json.loads(line) for line in (DATA / "eval" / "smoke.jsonl").read_text().splitlines()]
    if name == "subset30":
        return latency + [r for r in rows if r not in latency][::10][:20]
    raise SystemExit(f"no article set {name!r} (latency, smoke, subset30)")


def run(label: str, articles: str, workers: int, llm: LLMSettings) -> dict:
    rows = article_set(articles)
    measure_reference_ms(llm, samples=1)  # the server's first long request is slow: not an article's
    done = itertools.count(1)  # next() is atomic: the workers share it

    def one(row: dict) -> dict:
        started = time.perf_counter()
        try:
            output = analyze(row["article"], llm).model_dump(mode="json")
        except NewsReaderError as error:
            output = {"error": f"{error.kind}: {error}"}
        seconds = time.perf_counter() - started
        print(f"  [{next(done)}/{len(rows)}] {row['id']}: {seconds:.1f} s", file=sys.stderr, flush=True)
        return {"id": row["id"], "seconds": round(seconds, 2), "output": output}

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(one, rows))
    total = time.perf_counter() - started
    usage = [u for r in results for u in r["output"].get("usage", [])]
    prompt = sum(u["prompt_tokens"] for u in usage)
    cached = [u["cached_tokens"] for u in usage if u["cached_tokens"] is not None]
    scored = [score_line(r["output"], row, row["article"]) for r, row in zip(results, rows, strict=True)
              if "error" not in r["output"]]
    metrics = aggregate(scored, [])
    seconds = [r["seconds"] for r in results]
    if workers == 1 and articles == "subset30":  # one at a time: the latency set's lines are its latencies
        latency_ids = {row["id"] for row in article_set("latency")}
        seconds = [r["seconds"] for r in results if r["id"] in latency_ids]
    return {
        "label": label, "articles": articles, "workers": workers, "model": llm.model,
        "base_url": llm.resolved_base_url(), "calls_per_article": llm.resolved_calls_per_article(),
        "structured_output": llm.structured_output, "n": len(rows),
        "failed": sum("error" in r["output"] for r in results),
        "total_s": round(total, 1), "articles_per_min": round(len(rows) / total * 60, 3),
        # Latency: the latency set's articles when they ran one at a time (else every article's wall time).
        "median_s": round(statistics.median(seconds), 1), "p95_s": round(percentile(seconds, 95), 1),
        "prompt_tokens_per_article": round(prompt / len(rows)),
        "cached_share": round(sum(cached) / prompt, 3) if cached and prompt else None,
        "quality": {name: metrics[name] for name in QUALITY} if scored else {},
        "lines": results,
    }


def compare(paths: list[Path]) -> None:
    records = [json.loads(p.read_text()) for p in paths]
    print("| label | articles | workers | articles/min | median s | p95 s | prompt tok/article | cached share | "
          + " | ".join(QUALITY) + " |")
    print("| --- " * (8 + len(QUALITY)) + "|")
    for r in records:
        quality = " | ".join("-" if r["quality"].get(q) is None else f"{r['quality'][q]:.3f}" for q in QUALITY)
        share = "-" if r["cached_share"] is None else f"{r['cached_share']:.0%}"
        print(f"| {r['label']} | {r['articles']} ({r['n']}) | {r['workers']} | {r['articles_per_min']:.2f} | "
              f"{r['median_s']:.1f} | {r['p95_s']:.1f} | {r['prompt_tokens_per_article']:,} | {share} | {quality} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    measure = commands.add_parser("run")
    measure.add_argument("--label", required=True)
    measure.add_argument("--articles", choices=("latency", "smoke", "subset30"), required=True)
    measure.add_argument("--workers", type=int, default=1)
    measure.add_argument("--out", type=Path, required=True)
    report = commands.add_parser("compare")
    report.add_argument("records", nargs="+", type=Path)
    args = parser.parse_args()
    if args.command == "compare":
        compare(args.records)
        return
    record = run(args.label, args.articles, args.workers, LLMSettings())
    args.out.write_text(json.dumps(record, indent=1) + "\n")
    compare([args.out])


if __name__ == "__main__":
    main()

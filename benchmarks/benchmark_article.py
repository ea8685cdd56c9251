"""Latency and tokens per step, step-by-step vs single prompt, on the configured LLM (default: the local model).

    python benchmarks/benchmark_article.py [ARTICLE.txt ...]

Without paths it uses the sample article and the flow's sample data. It starts the local server when needed
and stops it again afterwards.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

from news_reader import local_server
from news_reader.extraction.errors import NewsReaderError
from news_reader.extraction.pipeline import analyze, analyze_single
from news_reader.extraction.schemas import ArticleInfo
from news_reader.settings import LLMSettings, LocalModelSettings

FLOWS = Path(__file__).resolve().parents[1] / "flows"


def default_articles() -> list[tuple[str, str]]:
    articles = [("sample_article.txt", (FLOWS / "sample_article.txt").read_text())]
    for line in (FLOWS / "news_reader" / "data.jsonl").read_text().splitlines():
        row = json.loads(line)
        articles.append((row["source"], row["article"]))
    return articles


def run(article: str, single: bool, llm: LLMSettings) -> tuple[ArticleInfo, float]:
    started = time.perf_counter()
    info = analyze_single(article, llm) if single else analyze(article, llm)
    return info, time.perf_counter() - started


def print_steps(name: str, mode: str, info: ArticleInfo, seconds: float) -> None:
    print(f"\n{name} [{mode}] {seconds:.1f} s wall, {len(info.business_info)} businesses, {len(info.errors)} errors")
    print(f"  {'step':<34}{'calls':>6}{'prompt':>8}{'compl.':>8}{'cached':>8}{'ms':>8}")
    for u in info.usage:
        label = f"{u.step}[{u.business}]" if u.business else u.step
        cached = "-" if u.cached_tokens is None else str(u.cached_tokens)
        print(f"  {label[:33]:<34}{u.calls:>6}{u.prompt_tokens:>8}{u.completion_tokens:>8}{cached:>8}{u.latency_ms:>8}")
    for error in info.errors:
        print(f"  error: {error.business or error.step}: {error.kind}: {error.message}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("paths", nargs="*", type=Path)
    args = parser.parse_args()
    articles = [(p.name, p.read_text()) for p in args.paths] or default_articles()
    llm, local = LLMSettings(), LocalModelSettings()
    started_here = llm.uses_local_server() and not local_server.status(local).healthy
    if started_here:
        load = time.perf_counter()
        local_server.start(local)
        print(f"local server started in {time.perf_counter() - load:.1f} s", flush=True)
    try:
        totals: dict[str, list[tuple[float, int, int]]] = {"step-by-step": [], "single prompt": []}
        for name, article in articles:
            for mode, single in (("step-by-step", False), ("single prompt", True)):
                try:
                    info, seconds = run(article, single, llm)
                except NewsReaderError as error:
                    print(f"\n{name} [{mode}] failed: {error.kind}: {error}", flush=True)
                    continue
                print_steps(name, mode, info, seconds)
                sys.stdout.flush()
                tokens = (sum(u.prompt_tokens for u in info.usage), sum(u.completion_tokens for u in info.usage))
                totals[mode].append((seconds, *tokens))
        print(f"\nmodel {llm.model}; {len(articles)} articles")
        for mode, rows in totals.items():
            if len(rows) < len(articles):
                print(f"  {mode:<14} {len(articles) - len(rows)} of {len(articles)} articles failed")
            if not rows:
                continue
            seconds = [r[0] for r in rows]
            print(f"  {mode:<14} mean {statistics.mean(seconds):5.1f} s, max {max(seconds):5.1f} s, "
                  f"mean tokens {statistics.mean(r[1] for r in rows):6.0f} prompt "
                  f"+ {statistics.mean(r[2] for r in rows):4.0f} completion")
    finally:
        if started_here:
            local_server.stop(local)


if __name__ == "__main__":
    main()

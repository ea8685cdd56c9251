"""Ask the model, for every company a recorded flow run analysed, whether the news is about that company, and write
the probability of "yes" (read from the answer's log-probabilities) for `replay_decisions.py --probes`.

    news-reader llm with -- python evaluations/probe_salience.py data/eval/dev.jsonl OUTPUTS.jsonl --out PROBES.jsonl

Articles run `--workers` at a time; one article's companies take turns, so its prefix is read once.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import click

from news_reader.evaluation.records import read_jsonl
from news_reader.extraction.article import prepare_article
from news_reader.extraction.errors import NewsReaderError
from news_reader.extraction.llm import get_client
from news_reader.extraction.salience import about_probability
from news_reader.settings import LLMSettings, PipelineSettings


@click.command()
@click.argument("dataset", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("outputs", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--workers", default=4, show_default=True)
def main(dataset: Path, outputs: Path, out: Path, workers: int) -> None:
    """One line per (article line, company) of OUTPUTS: p_yes (null when the server returned no probabilities, or
    the call failed) and the call's usage."""
    client, limits = get_client(LLMSettings()), PipelineSettings()
    labels = read_jsonl(dataset)
    jobs = [(int(o["line_number"]), [e["business"] for e in o.get("business_info") or []])
            for o in read_jsonl(outputs)]
    jobs = [(n, names) for n, names in jobs if names]

    def probe(n: int, names: list[str]) -> list[dict]:
        article = prepare_article(labels[n]["article"], limits.max_article_chars)
        rows = []
        for name in names:
            try:
                p_yes, usage = about_probability(client, article, name)
            except NewsReaderError as error:
                rows.append({"line_number": n, "business": name, "p_yes": None, "error": error.kind})
            else:
                rows.append({"line_number": n, "business": name, "p_yes": p_yes,
                             "usage": usage.model_dump(mode="json")})
        return rows

    out.parent.mkdir(parents=True, exist_ok=True)
    with ThreadPoolExecutor(max_workers=workers) as pool, out.open("w", encoding="utf-8") as sink:
        for done, rows in enumerate(pool.map(lambda job: probe(*job), jobs), start=1):
            for row in rows:
                sink.write(json.dumps(row) + "\n")
            sink.flush()
            click.echo(f"{done}/{len(jobs)} articles: " + ", ".join(
                f"{r['business']} {r['p_yes']:.2f}" if r["p_yes"] is not None else f"{r['business']} -"
                for r in rows), err=True)


if __name__ == "__main__":
    main()

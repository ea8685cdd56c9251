"""Ask the model, for every article of a dataset, whether it is about business, and write the probability of `true`
(read from the answer's log-probabilities) beside the label, to choose `NEWS_READER_MIN_BUSINESS_PROBABILITY` on dev
and to replay it on a recorded run (`replay_decisions.py --business-probes`).

    news-reader llm with -- python evaluations/probe_business.py data/eval/dev.jsonl --out PROBES.jsonl
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
from news_reader.extraction.nodes import business_probability
from news_reader.extraction.steps import STEPS
from news_reader.settings import LLMSettings, PipelineSettings


@click.command()
@click.argument("dataset", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--workers", default=4, show_default=True)
def main(dataset: Path, out: Path, workers: int) -> None:
    """One line per article of DATASET: the label, the model's answer, p_true (null when the server returned no
    probabilities, or the call failed) and the call's usage."""
    client, limits, step = get_client(LLMSettings()), PipelineSettings(), STEPS["business_category"]
    labels = read_jsonl(dataset)

    def probe(n: int) -> dict:
        row = {"line_number": n, "id": labels[n]["id"], "label": labels[n]["is_about_business"]}
        try:
            article = prepare_article(labels[n]["article"], limits.max_article_chars)
            answer, p_true, usage = business_probability(client, step.render(article), article)
        except NewsReaderError as error:
            return {**row, "answer": None, "p_true": None, "error": error.kind}
        return {**row, "answer": answer.is_about_business, "p_true": p_true, "usage": usage.model_dump(mode="json")}

    out.parent.mkdir(parents=True, exist_ok=True)
    with ThreadPoolExecutor(max_workers=workers) as pool, out.open("w", encoding="utf-8") as sink:
        for done, row in enumerate(pool.map(probe, range(len(labels))), start=1):
            sink.write(json.dumps(row) + "\n")
            sink.flush()
            p_true = "-" if row["p_true"] is None else f"{row['p_true']:.2f}"
            click.echo(f"{done}/{len(labels)} {row['id']}: label {row['label']}, p_true {p_true}", err=True)


if __name__ == "__main__":
    main()

"""Feedback as labelled data: analyses with feedback, written in the evaluation format of data/eval/*.jsonl,
under news_reader.store.records.EXPORT_RULES."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from news_reader.extraction.schemas import StockPriceChange
from news_reader.store.records import ExportSummary
from news_reader.store.tables import Analysis, Feedback

ID_PREFIX = "feedback/"


class LabelledCompany(BaseModel):
    name: str
    aliases: list[str]
    stock_price_change: StockPriceChange
    model_confidence: float | None = Field(None, description=(
        "The flow's confidence in the direction it answered (a reviewer's cue: corrections of confident answers "
        "are the most telling); null where the LLM server gave none."))


class LabelledExample(BaseModel):
    """One line of the evaluation set: the same keys as `Example` in data/build_dataset.py."""

    id: str
    article: str
    title_reference: str
    summary_reference: str
    is_about_business: bool
    companies: list[LabelledCompany]


def write_dataset(session: Session, path: Path) -> ExportSummary:
    query = (select(Analysis).where(Analysis.feedback.any()).options(selectinload(Analysis.feedback))
             .order_by(Analysis.created_at, Analysis.id))
    examples, thumbs_down, failed = [], 0, 0
    for analysis in session.scalars(query):
        latest = analysis.feedback[-1]
        if analysis.result is None:
            failed += 1
        elif latest.rating == "down" and not latest.corrections:
            thumbs_down += 1
        else:
            examples.append(labelled_example(analysis, latest))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(example.model_dump_json() + "\n" for example in examples), encoding="utf-8")
    return ExportSummary(path=path, examples=len(examples), left_out_thumbs_down_without_corrections=thumbs_down,
                         left_out_failed_analyses=failed)


def labelled_example(analysis: Analysis, feedback: Feedback) -> LabelledExample:
    answer = analysis.result or {}
    corrected = {c["business"]: c["stock_price_change"] for c in feedback.corrections}
    companies = [LabelledCompany(name=entry["business"], aliases=[],
                                 stock_price_change=corrected.get(entry["business"], entry["stock_price_change"]),
                                 model_confidence=entry.get("confidence"))
                 for entry in answer["business_info"]]
    return LabelledExample(id=f"{ID_PREFIX}{analysis.trace_id}", article=analysis.article.strip(),
                           title_reference=answer["title"], summary_reference=answer["summary"],
                           is_about_business=answer["is_about_business"], companies=companies)

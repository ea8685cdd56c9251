"""Durable history: every analysis the endpoint ran, the feedback users gave on it, and what follows from them (a
dashboard's time series, a labelled dataset). No Prompt flow import."""

from __future__ import annotations

import importlib

__all__ = [
    "Correction",
    "DuplicateTraceId",
    "ExportSummary",
    "FeedbackRequest",
    "IdempotencyKeyReused",
    "InvalidFeedback",
    "Store",
    "StoredAnalysis",
    "StoredFeedback",
    "TimeseriesRow",
    "UnknownTraceId",
    "UnstorableData",
]
# Imported on first use: `news-reader --help` lists the `db` and `feedback` commands without loading SQLAlchemy
# and Alembic.
_MODULES = {
    "news_reader.store.feedback": ("Correction", "FeedbackRequest"),
    "news_reader.store.records": ("ExportSummary", "StoredAnalysis", "StoredFeedback", "TimeseriesRow"),
    "news_reader.store.store": ("DuplicateTraceId", "IdempotencyKeyReused", "InvalidFeedback", "Store",
                                "UnknownTraceId", "UnstorableData"),
}
_LAZY = {name: module for module, names in _MODULES.items() for name in names}


def __getattr__(name: str) -> object:
    if name not in _LAZY:
        raise AttributeError(f"module 'news_reader.store' has no attribute {name!r}")
    return getattr(importlib.import_module(_LAZY[name]), name)

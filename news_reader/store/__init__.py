"""Durable history: every analysis the endpoint ran, the feedback users gave on it, and what follows from them (a
dashboard's time series, a labelled dataset). No Prompt flow import."""

from news_reader.store.feedback import Correction, FeedbackRequest
from news_reader.store.records import ExportSummary, StoredAnalysis, StoredFeedback, TimeseriesRow
from news_reader.store.store import DuplicateTraceId, InvalidFeedback, Store, UnknownTraceId

__all__ = [
    "Correction",
    "DuplicateTraceId",
    "ExportSummary",
    "FeedbackRequest",
    "InvalidFeedback",
    "Store",
    "StoredAnalysis",
    "StoredFeedback",
    "TimeseriesRow",
    "UnknownTraceId",
]

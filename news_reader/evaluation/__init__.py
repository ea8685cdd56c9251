"""Evaluation of extractions against the labelled articles: scores, the LLM judge, experiment records, the gate."""

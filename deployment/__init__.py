"""Serving, packaging and Azure ML deployment of the News Reader flow."""

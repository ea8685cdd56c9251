"""The News Reader flow over HTTP, locally and in the Azure ML serving image."""

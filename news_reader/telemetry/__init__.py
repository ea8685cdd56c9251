"""Operations: where spans go (`tracing`), JSON log events drawn from the spans (`events`, `logs`) and Prometheus
metrics with cost estimates (`metrics`). Plain OpenTelemetry and prometheus-client; no Prompt flow import."""

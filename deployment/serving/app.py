"""Prompt flow's serving app (Flask) with the endpoint's contract around it: API key, request checks with clear 4xx
answers, flow failures mapped to their HTTP status, a version route and an OpenAPI document."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from importlib.metadata import version
from pathlib import Path

import yaml
from flask import Flask, Response, g, jsonify, request
from promptflow.contracts.run_info import Status
from promptflow.core._serving.app import create_app as create_promptflow_app
from promptflow.core._serving.monitor.data_collector import FlowDataCollector
from promptflow.core._serving.monitor.mdc_exporter import MdcExporter
from werkzeug.exceptions import HTTPException

from deployment.flow_package import FLOW_FILE, find_flow, stage_flow
from deployment.serving.feedback_routes import install_feedback
from deployment.serving.observability import observe, start_telemetry
from deployment.serving.openapi import openapi_document
from deployment.serving.score_request import (
    STATUS_OF_KIND,
    RequestRejected,
    check_api_key,
    error_body,
    parse_score_request,
)
from deployment.serving.web_pages import PAGE_ROUTES, install_web
from news_reader import __version__
from news_reader.extraction.errors import NewsReaderError
from news_reader.extraction.steps import STEPS, configuration, prompt_node
from news_reader.flow_nodes import connection_for
from news_reader.settings import LLMSettings, PipelineSettings, ServingSettings, StoreSettings
from news_reader.store import Store
from news_reader.telemetry.metrics import estimate_cost
from news_reader.telemetry.trace_ids import current_trace_id
from news_reader.telemetry.tracing import add_span_exporter

# Reachable without the API key: probes, versions and API documents.
_OPEN_ROUTES = {"health", "version", "openapi", "swagger", *PAGE_ROUTES}


def create_app(flow_dir: Path, serving: ServingSettings | None = None, llm: LLMSettings | None = None) -> Flask:
    """Serve the flow in `flow_dir` (a folder holding flow.dag.yaml, or one level above it)."""
    serving = serving or ServingSettings()
    llm = llm or LLMSettings()
    staged = _stage(find_flow(Path(flow_dir)), llm)
    os.environ["PROMPTFLOW_PROJECT_PATH"] = str(staged)  # where Prompt flow's serving app looks for the flow
    dag = yaml.safe_load((staged / FLOW_FILE).read_text(encoding="utf-8"))
    connections = [connection_for(name, llm) for name in _connection_names(dag)]
    start_telemetry()  # first: Prompt flow's app joins our tracer provider
    app = create_promptflow_app(engine="flask", flow_file_path=staged / FLOW_FILE,
                                connection_provider=lambda: connections)
    observe(app)
    app.wsgi_app = _api_boundary(app.wsgi_app)
    app.config["MAX_CONTENT_LENGTH"] = serving.max_request_bytes
    if serving.collect_data:
        _collect_for_model_monitoring(app)
    max_chars = PipelineSettings().max_article_chars
    api_key = serving.api_key.get_secret_value() if serving.api_key else None
    about = {"news_reader": __version__, "promptflow": version("promptflow"), "flow": app.flow_name,
             "model": llm.model, "build_info": os.environ.get("BUILD_INFO", "")}

    @app.before_request
    def check_request():
        if request.endpoint in _OPEN_ROUTES or request.method == "OPTIONS":  # OPTIONS: CORS preflight
            return None
        check_api_key(request.headers.get("Authorization"), api_key)
        if request.path == "/score" and request.method != "POST":
            raise RequestRejected("method_not_allowed", f"{request.method} /score: send the article with POST")
        if request.endpoint != "score":
            return None
        if request.accept_mimetypes and not request.accept_mimetypes.accept_json:
            raise RequestRejected("not_acceptable", f"the answer is JSON; the request accepts only "
                                                    f"{request.headers.get('Accept')}")
        if (request.content_length or 0) > serving.max_request_bytes:
            raise RequestRejected("request_too_large",
                                  f"request body has {request.content_length:,} bytes; "
                                  f"the limit is {serving.max_request_bytes:,} (NEWS_READER_SERVING_MAX_REQUEST_BYTES)")
        parse_score_request(request.get_data(cache=True), request.mimetype or None, max_chars)
        return None

    @app.after_request
    def explain_flow_failure(response: Response) -> Response:
        """Prompt flow answers a failed flow with its own error body and status; answer with the node's error."""
        failed = "flow_result" in g and g.flow_result.run_info.status != Status.Completed
        if request.endpoint == "score" and response.status_code >= 400 and failed:
            error = g.flow_result.run_info.error or {}
            kind, message = _failure(error)
            # The request reached the flow: its trace id is returned, as with a result, for logs and feedback.
            response = jsonify({**error_body(kind, message), "trace_id": current_trace_id()})
            response.status_code = STATUS_OF_KIND[kind]
        return response

    @app.errorhandler(RequestRejected)
    def rejected(err: RequestRejected):
        response = jsonify(error_body(err.kind, str(err)))
        if err.kind == "unauthorized":
            response.headers["WWW-Authenticate"] = "Bearer"
        return response, err.status

    @app.errorhandler(HTTPException)
    def http_error(err: HTTPException):
        kind = "request_too_large" if err.code == 413 else "invalid_request"
        return jsonify(error_body(kind, err.description or err.name)), err.code

    app.view_functions["version"] = lambda: {"status": "Healthy", **about}
    openapi = openapi_document(max_chars, serving.max_request_bytes, auth=api_key is not None)
    app.add_url_rule("/openapi.json", "openapi", lambda: openapi)
    app.view_functions["staticweb_blueprint.notfound"] = _not_found
    store = Store(StoreSettings().url)
    store.migrate()
    install_feedback(app, store, model=llm.model, variant=_served_variant(dag, staged.name),
                     estimate_cost=estimate_cost)
    install_web(app, store, max_chars)
    return app


def _collect_for_model_monitoring(app: Flask) -> None:
    """Azure ML's data collector: every request's inputs and outputs (collections model_inputs, model_outputs) and
    its spans (app_traces). Prompt flow's serving app attaches these itself only in its Azure ML mode, which would
    also replace these settings' connection with the workspace's."""
    app.flow_monitor.data_collector = FlowDataCollector(app.logger)
    add_span_exporter(MdcExporter(app.logger))


def _api_boundary(wsgi_app):
    """Every request starts its own trace: the trace id keys the stored analysis and its feedback, so a caller's
    `traceparent` must not make two requests share one. Only `/score` may be called from other web origins:
    Prompt flow's app allows every origin on every route, which would let any site read the stored history."""
    def app(environ, start_response):
        environ.pop("HTTP_TRACEPARENT", None)
        environ.pop("HTTP_TRACESTATE", None)
        if environ.get("PATH_INFO") == "/score":
            return wsgi_app(environ, start_response)

        def same_origin_only(status, headers, exc_info=None):
            kept = [(name, value) for name, value in headers if not name.lower().startswith("access-control-")]
            return start_response(status, kept, exc_info)

        return wsgi_app(environ, same_origin_only)

    return app


def _not_found(path: str):
    """Prompt flow's catch-all route answers in plain text; answer with the API's error body."""
    return jsonify(error_body("not_found", f"no route /{path} (see /openapi.json)")), 404


def _stage(flow_dir: Path, llm: LLMSettings) -> Path:
    """A self-contained copy of the flow in a temporary folder; NEWS_READER_LLM_MODEL, when set, names the model
    every LLM node calls."""
    root = Path(tempfile.mkdtemp(prefix="news-reader-flow-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    model = llm.model if "model" in llm.model_fields_set else None
    return stage_flow(flow_dir, root / flow_dir.name, model=model)


def _served_variant(dag: dict, flow_name: str) -> str:
    """The configuration served, named as experiments name it: `default`, `<step>=<variant>` for each prompt whose
    default variant is not variant_0, `single_prompt` for the baseline flow, or another flow's folder name."""
    if not dag.get("node_variants"):
        return "single_prompt" if flow_name == "news_reader_single" else flow_name
    defaults = {step: dag["node_variants"][prompt_node(step)]["default_variant_id"]
                for step in STEPS if prompt_node(step) in dag["node_variants"]}
    return configuration(defaults)


def _connection_names(dag: dict) -> set[str]:
    return {node["inputs"]["connection"] for node in dag["nodes"] if "connection" in node.get("inputs", {})}


def _failure(error: dict) -> tuple[str, str]:
    """The failure kind and message of a failed flow run, from the node exception Prompt flow reports."""
    for detail in error.get("additionalInfo") or []:
        exception = detail.get("info") or {}
        if exception.get("type") in _KINDS:
            return _KINDS[exception["type"]], exception.get("message", "")
    return "flow_failed", error.get("message", "the flow failed")


def _subclasses(cls: type) -> list[type]:
    return [cls, *(c for sub in cls.__subclasses__() for c in _subclasses(sub))]


_KINDS = {cls.__name__: cls.kind for cls in _subclasses(NewsReaderError)}

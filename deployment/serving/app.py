"""Prompt flow's serving app (Flask) with the endpoint's contract around it: API key, request checks with clear 4xx
answers, flow failures mapped to their HTTP status, a version route and an OpenAPI document."""

from __future__ import annotations

import atexit
import os
import shutil
from importlib.metadata import version
from pathlib import Path

from flask import Flask, Response, current_app, g, jsonify, request
from promptflow.contracts.run_info import Status
from promptflow.core._serving.app import create_app as create_promptflow_app
from promptflow.core._serving.monitor.data_collector import FlowDataCollector
from promptflow.core._serving.monitor.mdc_exporter import MdcExporter
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.exceptions import HTTPException, MethodNotAllowed
from werkzeug.routing import RoutingException

from deployment.flow_package import FLOW_FILE, find_flow, stage_flow, temporary_stage_folder
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
from news_reader.extraction.steps import configuration
from news_reader.flow_dag import default_variants, llm_nodes, read_dag
from news_reader.flow_nodes import connection_for
from news_reader.settings import LLMSettings, PipelineSettings, ServingSettings, StoreSettings, env_name
from news_reader.store import Store
from news_reader.telemetry.metrics import estimate_cost
from news_reader.telemetry.trace_ids import current_trace_id
from news_reader.telemetry.tracing import add_span_exporter

# Reachable without the API key: probes, versions and API documents.
_OPEN_ROUTES = {"health", "version", "openapi", "swagger", *PAGE_ROUTES}
# Prompt flow's route for every path and method that no other route takes.
_CATCH_ALL = "staticweb_blueprint.notfound"
# On every answer, page or API. Scripts, styles, images and requests from this origin only, none inline (an injected
# tag or attribute does not run); blob: for the dashboard's chart, fetched with the key and shown from memory. Never
# framed (frame-ancestors for browsers that read CSP, X-Frame-Options for older ones), no MIME sniffing of an answer
# into a script, and no page address (which may name a trace) sent to other sites.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' blob:; object-src 'none'; base-uri 'none'; "
                               "form-action 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}
# The error code of an HTTP error that no check of ours raised: Flask's, waitress's, the catch-all route's.
_KIND_OF_STATUS = {404: "not_found", 405: "method_not_allowed", 413: "request_too_large", 431: "request_too_large",
                   501: "invalid_request"}  # 501: waitress on a Transfer-Encoding it does not implement


class StartupError(Exception):
    """The server cannot start, for a reason its message states in one line."""


def create_app(flow_dir: Path, serving: ServingSettings | None = None, llm: LLMSettings | None = None) -> Flask:
    """Serve the flow in `flow_dir` (a folder holding flow.dag.yaml, or one level above it)."""
    serving = serving or ServingSettings()
    llm = llm or LLMSettings()
    max_chars = PipelineSettings().max_article_chars
    api_key = serving.api_key.get_secret_value() if serving.api_key else None
    staged = _stage(find_flow(Path(flow_dir)), llm)
    dag = read_dag(staged)
    app = _promptflow_app(staged, dag, llm)
    observe(app)
    app.wsgi_app = _api_boundary(app.wsgi_app)
    if serving.collect_data:
        _collect_for_model_monitoring(app)
    _check_requests(app, api_key, serving.max_request_bytes, max_chars)
    # Before the failures are explained: Flask runs after_request hooks last registered first, and a failed flow is
    # stored with the error its answer gives.
    _install_history(app, StoreSettings().url, llm.model, _served_variant(dag, staged.name), max_chars)
    _explain_flow_failures(app)
    _answer_errors_in_json(app)
    _add_documents(app, llm.model, openapi_document(max_chars, serving.max_request_bytes, auth=api_key is not None))
    return app


def _promptflow_app(staged: Path, dag: dict, llm: LLMSettings) -> Flask:
    """Prompt flow's serving app over the staged flow, its LLM connections made from `llm`."""
    os.environ["PROMPTFLOW_PROJECT_PATH"] = str(staged)  # where Prompt flow's serving app looks for the flow
    # A round trip Prompt flow requires: its nodes take only connections, which they turn back into settings.
    connections = [connection_for(name, llm) for name in {node["inputs"]["connection"] for node in llm_nodes(dag)}]
    start_telemetry()  # first: Prompt flow's app joins our tracer provider
    return create_promptflow_app(engine="flask", flow_file_path=staged / FLOW_FILE,
                                 connection_provider=lambda: connections)


def _check_requests(app: Flask, api_key: str | None, max_request_bytes: int, max_chars: int) -> None:
    """Refuse, before the flow runs, a request without the API key and a `/score` request the flow cannot take."""
    app.config["MAX_CONTENT_LENGTH"] = max_request_bytes

    @app.before_request
    def check_request():
        if request.endpoint in _OPEN_ROUTES or request.method == "OPTIONS":  # OPTIONS: CORS preflight
            return
        check_api_key(request.headers.get("Authorization"), api_key)
        if request.endpoint == "score":
            _check_score_request(max_request_bytes, max_chars)


def _check_score_request(max_request_bytes: int, max_chars: int) -> None:
    """The current `POST /score` request accepts JSON, is within the size limit and holds an acceptable article."""
    if request.accept_mimetypes and not request.accept_mimetypes.accept_json:
        raise RequestRejected("not_acceptable", f"the answer is JSON; the request accepts only "
                                                f"{request.headers.get('Accept')}")
    if (request.content_length or 0) > max_request_bytes:
        raise RequestRejected("request_too_large",
                              f"request body has {request.content_length:,} bytes; "
                              f"the limit is {max_request_bytes:,} (NEWS_READER_SERVING_MAX_REQUEST_BYTES)")
    parse_score_request(request.get_data(cache=True), request.mimetype or None, max_chars)


def _explain_flow_failures(app: Flask) -> None:
    """Prompt flow answers a failed flow with its own error body and status; answer with the node's error."""
    @app.after_request
    def explain_flow_failure(response: Response) -> Response:
        failed = "flow_result" in g and g.flow_result.run_info.status != Status.Completed
        if request.endpoint == "score" and response.status_code >= 400 and failed:
            error = g.flow_result.run_info.error or {}
            kind, message = _failure(error)
            # The request reached the flow: its trace id is returned, as with a result, for logs and feedback.
            response = jsonify({**error_body(kind, message), "trace_id": current_trace_id()})
            response.status_code = STATUS_OF_KIND[kind]
        return response


def _answer_errors_in_json(app: Flask) -> None:
    """Refused requests, Flask's HTTP errors and unknown routes answered with the API's error body."""
    @app.errorhandler(RequestRejected)
    def rejected(err: RequestRejected):
        response = jsonify(error_body(err.kind, str(err)))
        if err.kind == "unauthorized":
            response.headers["WWW-Authenticate"] = "Bearer"
        return response, err.status

    @app.errorhandler(HTTPException)
    def http_error(err: HTTPException):
        response = jsonify(error_body(kind_of_status(err.code), err.description or err.name))
        if isinstance(err, MethodNotAllowed) and err.valid_methods:
            response.headers["Allow"] = ", ".join(sorted(err.valid_methods))
        return response, err.code

    app.view_functions[_CATCH_ALL] = _not_found


def kind_of_status(status: int) -> str:
    """The API's error code for an HTTP error of `status` (a key of STATUS_OF_KIND)."""
    return _KIND_OF_STATUS.get(status, "invalid_request" if status < 500 else "flow_failed")


def _add_documents(app: Flask, model: str, openapi: dict) -> None:
    """`/version` (in place of Prompt flow's) with the versions, the flow and the model served; `/openapi.json`."""
    about = {"news_reader": __version__, "promptflow": version("promptflow"), "flow": app.flow_name,
             "model": model, "build_info": os.environ.get("BUILD_INFO", "")}
    app.view_functions["version"] = lambda: {"status": "Healthy", **about}
    app.add_url_rule("/openapi.json", "openapi", lambda: openapi)


def _install_history(app: Flask, store_url: str, model: str, variant: str, max_chars: int) -> None:
    """The store of analyses and feedback (its schema migrated), with the feedback and history API and the web page."""
    store = _open_store(store_url)
    install_feedback(app, store, model=model, variant=variant, estimate_cost=estimate_cost)
    install_web(app, store, max_chars)


def _open_store(url: str) -> Store:
    """The store with its schema migrated, or a StartupError naming the setting of a database that cannot be used."""
    try:
        store = Store(url)
        store.migrate()
    except (SQLAlchemyError, ValueError) as error:  # ValueError: a URL SQLAlchemy cannot read (`?timeout=soon`)
        raise StartupError(f"database ({env_name(StoreSettings, 'url')}): "
                           f"{str(getattr(error, 'orig', None) or error).splitlines()[0]}") from error
    except OSError as error:  # a SQLite file whose folder cannot be made
        raise StartupError(f"database ({env_name(StoreSettings, 'url')}): {error.filename}: "
                           f"{error.strerror}") from error
    return store


def _collect_for_model_monitoring(app: Flask) -> None:
    """Azure ML's data collector: every request's inputs and outputs (collections model_inputs, model_outputs) and
    its spans (app_traces). Prompt flow's serving app attaches these itself only in its Azure ML mode, which would
    also replace these settings' connection with the workspace's."""
    app.flow_monitor.data_collector = FlowDataCollector(app.logger)
    add_span_exporter(MdcExporter(app.logger))


def _api_boundary(wsgi_app):
    """Every request starts its own trace: the trace id keys the stored analysis and its feedback, so a caller's
    `traceparent` must not make two requests share one. Only `/score` may be called from other web origins:
    Prompt flow's app allows every origin on every route, which would let any site read the stored history. Every
    answer carries the security headers."""
    def app(environ, start_response):
        environ.pop("HTTP_TRACEPARENT", None)
        environ.pop("HTTP_TRACESTATE", None)
        cross_origin = environ.get("PATH_INFO") == "/score"

        def answer(status, headers, exc_info=None):
            if not cross_origin:
                headers = [(name, value) for name, value in headers if not name.lower().startswith("access-control-")]
            return start_response(status, [*headers, *SECURITY_HEADERS.items()], exc_info)

        return wsgi_app(environ, answer)

    return app


def _not_found(path: str):
    """Prompt flow's catch-all route takes every path and method no other route takes, and answers in plain text:
    answer with the API's error body, 405 with the methods allowed where another route has the path."""
    allowed = _allowed_methods()
    if allowed:
        message = f"{request.method} /{path} is not allowed; allowed: {', '.join(allowed)}"
        response = jsonify(error_body("method_not_allowed", message))
        response.headers["Allow"] = ", ".join(allowed)
        return response, 405
    return jsonify(error_body("not_found", f"no route /{path} (see /openapi.json)")), 404


def _allowed_methods() -> list[str]:
    """The methods some route other than the catch-all takes at the current request's path."""
    adapter = current_app.url_map.bind_to_environ(request.environ)
    allowed = []
    for method in sorted(request.url_rule.methods):  # the catch-all's, as it is the rule that matched
        try:
            endpoint, _ = adapter.match(method=method)
        except (HTTPException, RoutingException):  # no route, or a redirect to another path
            continue
        if endpoint != _CATCH_ALL:
            allowed.append(method)
    return allowed


def _stage(flow_dir: Path, llm: LLMSettings) -> Path:
    """A self-contained copy of the flow in a temporary folder; NEWS_READER_LLM_MODEL, when set, names the model
    every LLM node calls."""
    root = temporary_stage_folder()
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    model = llm.model if "model" in llm.model_fields_set else None
    return stage_flow(flow_dir, root / flow_dir.name, model=model)


def _served_variant(dag: dict, flow_name: str) -> str:
    """The configuration served, named as experiments name it: `default`, `<step>=<variant>` for each prompt whose
    default variant is not variant_0, `single_prompt` for the baseline flow, or another flow's folder name."""
    defaults = default_variants(dag)
    if "single_prompt" in defaults:
        return "single_prompt"
    return configuration(defaults) if defaults else flow_name


def _failure(error: dict) -> tuple[str, str]:
    """The failure kind and message of a failed flow run, from the node exception Prompt flow reports."""
    # By class name: Prompt flow keeps only a node exception's class name and message, not the exception or its kind.
    for detail in error.get("additionalInfo") or []:
        exception = detail.get("info") or {}
        if exception.get("type") in _KINDS:
            return _KINDS[exception["type"]], exception.get("message", "")
    return "flow_failed", error.get("message", "the flow failed")


def _subclasses(cls: type) -> list[type]:
    return [cls, *(c for sub in cls.__subclasses__() for c in _subclasses(sub))]


_KINDS = {cls.__name__: cls.kind for cls in _subclasses(NewsReaderError)}

"""`python -m deployment.serving`: serve the News Reader flow over HTTP with waitress."""

from __future__ import annotations

import json
import os
import resource
import signal
import sys
from pathlib import Path
from typing import TypeVar

import click
from flask import Flask
from pydantic import ValidationError
from pydantic_settings import BaseSettings
from waitress.channel import HTTPChannel
from waitress.server import BaseWSGIServer, create_server
from waitress.task import ErrorTask
from waitress.utilities import Error

from deployment.serving.score_request import error_body
from news_reader.settings import REPO_STATE_DIR, LLMSettings, ServingSettings, env_name, setting_problems

SettingsT = TypeVar("SettingsT", bound=BaseSettings)

DEFAULT_FLOW = Path(__file__).resolve().parents[2] / "flows" / "news_reader"


@click.command()
@click.option("--flow", "flow_dir", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="Flow folder [default: NEWS_READER_FLOW_DIR, else $AZUREML_MODEL_DIR when set, else "
                   "flows/news_reader].")
@click.option("--host", default=None, help="Interface [default: NEWS_READER_SERVING_HOST or 127.0.0.1].")
@click.option("--port", type=int, default=None, help="Port [default: NEWS_READER_SERVING_PORT or 8080].")
def main(flow_dir: Path | None, host: str | None, port: int | None) -> None:
    """Serve POST /score, GET /health, /version and /openapi.json."""
    given = {"host": host, "port": port, "flow_dir": flow_dir}
    serving = _read(ServingSettings, **{k: v for k, v in given.items() if v is not None})
    llm = _read(LLMSettings)
    flow_dir = serving.flow_dir or Path(os.environ.get("AZUREML_MODEL_DIR") or DEFAULT_FLOW)
    # The dashboard's chart library writes its config and font cache, Prompt flow its home (read when it is first
    # imported, in _create_app); not into the home folder (make and the image set both).
    os.environ.setdefault("MPLCONFIGDIR", str(REPO_STATE_DIR / "matplotlib"))
    os.environ.setdefault("PF_HOME_DIRECTORY", str(REPO_STATE_DIR / "pf"))
    app = _create_app(flow_dir, serving, llm)
    server = _listen(app, serving)
    auth = "API key required" if serving.api_key else "no API key"
    click.echo(f"News Reader on http://{serving.host}:{serving.port} ({auth}); flow {flow_dir}; "
               f"model {llm.model} at {llm.resolved_base_url()}", err=True)
    # Stopping (Ctrl-C, or SIGTERM from a container runtime or a test) exits normally, so the staged copy is removed.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    server.run()


def _read(settings: type[SettingsT], **values: object) -> SettingsT:
    """Settings from the environment; a bad value is one line naming its variable, not a traceback."""
    try:
        return settings(**values)
    except ValidationError as error:
        raise click.ClickException(f"invalid setting: {setting_problems(settings, error)}") from None


def _create_app(flow_dir: Path, serving: ServingSettings, llm: LLMSettings) -> Flask:
    """The app; a database it cannot use or a flow folder it cannot read is one line, not a traceback."""
    from deployment.serving.app import StartupError, create_app

    try:
        return create_app(flow_dir, serving, llm)
    except StartupError as error:
        raise click.ClickException(str(error)) from None
    except OSError as error:
        raise click.ClickException(f"{error.filename}: {error.strerror}" if error.filename else str(error)) from None


def _listen(app: Flask, serving: ServingSettings):
    """Waitress bound to the address, with the limits chosen in ServingSettings; a port in use is one line."""
    _allow_open_files(2 * serving.connection_limit + 256)
    sockets: dict = {}  # waitress's socket map: its listeners, and later its connections
    try:
        server = create_server(
            app, map=sockets, host=serving.host, port=serving.port, threads=serving.threads, ident="news-reader",
            connection_limit=serving.connection_limit, channel_timeout=serving.channel_timeout_s,
            cleanup_interval=serving.cleanup_interval_s,
            # Waitress refuses at the limit itself (>=); ours is the largest size accepted.
            max_request_body_size=serving.max_request_bytes + 1, max_request_header_size=serving.max_header_bytes + 1,
            # select() fails on a file descriptor numbered 1,024 or more (the whole server stops), which a thousand
            # connections and their bodies' temporary files reach; poll() has no such limit.
            asyncore_use_poll=True)
    except (OSError, ValueError) as error:  # ValueError: waitress's word for a host it cannot resolve
        raise click.ClickException(f"cannot listen on {serving.host}:{serving.port}: "
                                   f"{getattr(error, 'strerror', None) or error}") from None
    # create_server takes no channel class; each listener makes its connections' channels from this attribute.
    for listener in sockets.values():
        if isinstance(listener, BaseWSGIServer):
            listener.channel_class = _JsonErrorChannel
    return server


def _allow_open_files(needed: int) -> None:
    """Each connection holds a file descriptor, two while its body overflows into a temporary file: raise the soft
    limit (often 1,024) towards the hard one so that connection_limit is reached before the descriptors run out."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        ceiling = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (ceiling, hard))


class _JsonError(Error):
    """One of waitress's own error answers with the API's JSON error body instead of its plain text."""

    def __init__(self, error: Error, message: str):
        super().__init__(error.body)
        self.code, self.reason, self.message = error.code, error.reason, message

    def to_response(self, ident=None):
        from deployment.serving.app import SECURITY_HEADERS, kind_of_status  # imported by then, in _create_app

        body = json.dumps(error_body(kind_of_status(self.code), self.message)).encode()
        return f"{self.code} {self.reason}", [("Content-Type", "application/json"), *SECURITY_HEADERS.items()], body


class _JsonErrorTask(ErrorTask):
    """Waitress answers a request it cannot parse (bad Content-Length or chunks, headers or body over the limit)
    before the app sees it; HTTPChannel.error_task_class is its hook for that answer."""

    def execute(self):
        self.request.error = _JsonError(self.request.error, _waitress_message(self.request.error, self.channel.adj))
        super().execute()


class _JsonErrorChannel(HTTPChannel):
    error_task_class = _JsonErrorTask


def _waitress_message(error: Error, adj) -> str:
    """The size limits named as the settings that set them; waitress's own words for malformed requests."""
    if error.code == 413:
        return (f"request body over the size limit; the limit is {adj.max_request_body_size - 1:,} bytes "
                f"({env_name(ServingSettings, 'max_request_bytes')})")
    if error.code == 431:
        return (f"request headers over the size limit; the limit is {adj.max_request_header_size - 1:,} bytes "
                f"({env_name(ServingSettings, 'max_header_bytes')})")
    return f"{error.reason}: {error.body}"


if __name__ == "__main__":
    main()

"""`python -m deployment.serving`: serve the News Reader flow over HTTP with waitress."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from typing import TypeVar

import click
import waitress
from pydantic import ValidationError
from pydantic_settings import BaseSettings

from deployment.serving.app import create_app
from news_reader.settings import LLMSettings, ServingSettings, setting_problems

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
    app = create_app(flow_dir, serving, llm)
    auth = "API key required" if serving.api_key else "no API key"
    click.echo(f"News Reader on http://{serving.host}:{serving.port} ({auth}); flow {flow_dir}; "
               f"model {llm.model} at {llm.resolved_base_url()}", err=True)
    # Stopping (Ctrl-C, or SIGTERM from a container runtime or a test) exits normally, so the staged copy is removed.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    waitress.serve(app, host=serving.host, port=serving.port, threads=serving.threads, ident="news-reader")



def _read(settings: type[SettingsT], **values: object) -> SettingsT:
    """Settings from the environment; a bad value is one line naming its variable, not a traceback."""
    try:
        return settings(**values)
    except ValidationError as error:
        raise click.ClickException(f"invalid setting: {setting_problems(settings, error)}") from None


if __name__ == "__main__":
    main()

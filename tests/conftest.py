"""Shared fixtures. Prompt flow's state goes to a test-only home inside the repo, never to `~`."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests
from pytest_httpserver import HTTPServer

REPO = Path(__file__).resolve().parents[1]
_STATE = REPO / ".state"
# Before anything imports promptflow: isolated pf home, plaintext keyring, no telemetry or trace service.
os.environ["PF_HOME_DIRECTORY"] = str(_STATE / "pf-tests")
os.environ["XDG_DATA_HOME"] = str(_STATE / "pf-tests" / "xdg")
os.environ["PYTHON_KEYRING_BACKEND"] = "keyrings.alt.file.PlaintextKeyring"
os.environ["APPLICATIONINSIGHTS_CONTROLPLANE_DISABLED"] = "true"
os.environ["PF_DISABLE_TRACING"] = "true"
# Temporary files of the tests and everything they start stay in the repo too (importing promptflow alone leaves a
# folder in the temporary directory).
os.environ["TMPDIR"] = str(_STATE / "tmp")
(_STATE / "tmp").mkdir(parents=True, exist_ok=True)
tempfile.tempdir = None  # forget a temporary directory chosen before this
if not (_STATE / "pf-tests" / "pf.yaml").is_file():  # pf's config file is the only switch for its telemetry
    (_STATE / "pf-tests").mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "flows" / "pf-config.yaml", _STATE / "pf-tests" / "pf.yaml")

from tests.fake_llm import FakeLLM, answer  # noqa: E402

ARTICLE = """Acme profits soar as Globex deal collapses

Acme Corp said on Monday that its quarterly profits rose by 40% after strong sales of its rocket skates in Europe.

Meanwhile Globex, its rival, said its planned takeover of Initech had collapsed after regulators raised concerns
about competition.
"""
ACME_QUOTE = "Acme Corp said on Monday that its quarterly profits rose by 40%"
# Crosses a line break, as quotes from hard-wrapped articles do.
GLOBEX_QUOTE = "Initech had collapsed after regulators raised concerns\nabout competition"
GENERAL_INFO_ANSWER = {"title": "Acme profits soar as Globex deal collapses",
                       "summary": "Acme's profits rose while Globex lost a takeover."}
ACME_ANSWER = {"business": "Acme Corp", "stock_price_change": "increase", "reason": "Profits rose by 40%.",
               "relevant_substring": ACME_QUOTE}
GLOBEX_ANSWER = {"business": "Globex", "stock_price_change": "decrease", "reason": "Its takeover collapsed.",
                 "relevant_substring": GLOBEX_QUOTE}
SPORT_ARTICLE = """Claxton hunting first major medal

British hurdler Sarah Claxton is confident she can win her first major medal at next month's championships in Madrid.
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def business_llm() -> Iterator[FakeLLM]:
    """A fake LLM with happy answers for ARTICLE, for a whole test module (see business_script)."""
    server = HTTPServer(host="127.0.0.1", threaded=True)
    server.start()
    try:
        yield script_business(FakeLLM(server))
    finally:
        server.clear()
        server.stop()


@pytest.fixture(scope="module")
def llm() -> Iterator[FakeLLM]:
    """business_llm for a whole test module, e.g. behind the module's server."""
    with business_llm() as fake:
        yield fake


@contextmanager
def running_server(env: dict[str, str | None], log: Path) -> Iterator[str]:
    """`python -m deployment.serving` on a free port, with `env` on top of this process's (None unsets a variable);
    yields its base URL. Stopping it (SIGTERM) must be a clean exit that removes its staged copy of the flow."""
    port = free_port()
    merged = {**os.environ, **env, "NEWS_READER_SERVING_PORT": str(port)}
    with log.open("wb") as out:
        server = subprocess.Popen([sys.executable, "-m", "deployment.serving"], cwd=REPO, stdout=out,
                                  stderr=subprocess.STDOUT,
                                  env={name: value for name, value in merged.items() if value is not None})
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while not _answers(url):
            if server.poll() is not None:
                pytest.fail(f"the server exited at start:\n{log.read_text()[-3000:]}")
            if time.monotonic() > deadline:
                pytest.fail("the server did not come up in 120 s")
            time.sleep(0.5)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert server.returncode == 0, f"the server did not stop cleanly:\n{log.read_text()[-3000:]}"
    # Its own copy (named for its pid): other servers may be staging theirs in the same folder meanwhile.
    assert not list(Path(tempfile.gettempdir()).glob(f"news-reader-flow-{server.pid}-*")), "staged flow left behind"


def connect_raw(url: str) -> socket.socket:
    """A bare TCP connection to a served `http://host:port`, for bytes no HTTP client library would send."""
    host, port = url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=10)


def exchange_raw(url: str, raw: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send `raw` and read the answer until the server closes: its status, headers (lower-case names) and body."""
    with connect_raw(url) as sock:
        sock.sendall(raw)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in lines)}
    return int(status_line.split()[1]), headers, body


def _answers(url: str) -> bool:
    try:
        return requests.get(f"{url}/health", timeout=2).ok
    except requests.ConnectionError:
        return False


@pytest.fixture
def fake_llm():
    server = HTTPServer(host="127.0.0.1", threaded=True)
    server.start()
    try:
        yield FakeLLM(server)
    finally:
        server.clear()
        server.stop()


@pytest.fixture
def business_script(fake_llm: FakeLLM) -> FakeLLM:
    """Happy answers for ARTICLE: business news about Acme (up) and Globex (down)."""
    return script_business(fake_llm)


def script_business(fake_llm: FakeLLM) -> FakeLLM:
    fake_llm.script("GeneralInfo", answer(GENERAL_INFO_ANSWER))
    fake_llm.script("BusinessCategory", answer({"is_about_business": True}))
    fake_llm.script("BusinessesInvolved", answer({"businesses": ["Acme Corp", "Globex"]}))
    for name in ("Acme Corp", "Globex"):  # the salience question, answered without log-probabilities: analysed
        fake_llm.script(f"BusinessSalience:{name}", answer({"about_company": "yes"}))
    fake_llm.script("BusinessSpecificInfo:Acme Corp", answer(ACME_ANSWER))
    fake_llm.script("BusinessSpecificInfo:Globex", answer(GLOBEX_ANSWER))
    return fake_llm


@pytest.fixture
def fake_settings(fake_llm: FakeLLM):
    """LLM settings pointing at the fake, with short back-off so retry tests stay fast."""
    from news_reader.settings import LLMSettings

    return LLMSettings(base_url=fake_llm.base_url, api_key="test", model="fake", max_retry_wait_s=5, timeout_s=5)


@pytest.fixture(scope="session", autouse=True)
def _test_database(tmp_path_factory):
    """Servers started by tests keep their analyses and feedback in a throwaway database, not the user's."""
    os.environ.setdefault("NEWS_READER_DATABASE_URL", f"sqlite:///{tmp_path_factory.mktemp('db') / 'tests.db'}")


@pytest.fixture(autouse=True)
def _restore_environment():
    """`PFClient.test(environment_variables=...)` writes into os.environ; keep tests independent."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)

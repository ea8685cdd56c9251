"""Start, health-check and stop the embedded llama.cpp server (OpenAI-compatible, loopback only)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass

import httpx

from news_reader import local_model
from news_reader.local_model import LocalModelError
from news_reader.settings import LOCAL_MODEL_ALIAS, LocalModelSettings


@dataclass
class ServerStatus:
    running: bool
    healthy: bool
    pid: int | None
    base_url: str

    def describe(self) -> str:
        if not self.running:
            return f"local LLM is not running (start it with `news-reader llm start`); it serves {self.base_url}"
        state = "healthy" if self.healthy else "starting or unhealthy"
        return f"local LLM (pid {self.pid}) is {state} at {self.base_url}"


def status(settings: LocalModelSettings) -> ServerStatus:
    pid = _recorded_pid(settings)
    running = pid is not None and _alive(pid)
    return ServerStatus(running, running and is_healthy(settings.base_url), pid if running else None, settings.base_url)


def is_healthy(base_url: str) -> bool:
    """The server has loaded the model: llama-server's `/health` answers 200 then (503 while loading), also while
    every slot is busy."""
    try:
        return httpx.get(f"{base_url.removesuffix('/v1')}/health", timeout=2.0).status_code == 200
    except httpx.HTTPError:
        return False


def start(settings: LocalModelSettings) -> ServerStatus:
    """Start the server in the background and wait until it answers; idempotent."""
    current = status(settings)
    log = settings.server_dir / "server.log"
    if current.healthy:
        return current
    if current.running:  # still loading: wait for it rather than start a second one
        pid = current.pid
        return _wait_until_healthy(settings, pid, exited=lambda: not _alive(pid), log_name=str(log))
    if not local_model.is_installed(settings):
        raise LocalModelError("the local model is not installed: run `news-reader llm install` (or `make setup`)")
    if not settings.server_binary.is_file():
        raise LocalModelError(f"llama.cpp's server is not built ({settings.server_binary}): run `make setup`")
    if _port_in_use(settings.host, settings.port):
        raise LocalModelError(f"port {settings.port} is in use; set NEWS_READER_LOCAL_PORT to a free port")
    settings.server_dir.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as output:  # the server keeps its own copy of the file descriptor
        process = subprocess.Popen(
            server_command(settings),
            stdout=output, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
            # Without PASSIVE, OpenMP threads spin and generation is about 3x slower on 2 cores.
            env={**os.environ, "OMP_WAIT_POLICY": "PASSIVE"},
        )
    _pid_file(settings).write_text(json.dumps({"pid": process.pid, "base_url": settings.base_url}))
    try:
        return _wait_until_healthy(settings, process.pid, exited=lambda: process.poll() is not None, log_name=str(log))
    except BaseException:  # including Ctrl-C while the model loads: never leave a detached server behind
        stop(settings)
        raise


def server_command(settings: LocalModelSettings) -> list[str]:
    """llama-server on loopback: `n_parallel` slots over one unified KV cache of `n_ctx` tokens, continuous batching
    and the prompt cache in host memory (llama.cpp's defaults), Prometheus metrics at `/metrics`, no web UI."""
    return [
        str(settings.server_binary), "--model", str(settings.model_file), "--alias", LOCAL_MODEL_ALIAS,
        "--ctx-size", str(settings.n_ctx), "--parallel", str(settings.n_parallel), "--kv-unified",
        "--threads", str(settings.n_threads), "--host", settings.host, "--port", str(settings.port),
        "--metrics", "--no-webui",
    ]


def _wait_until_healthy(settings: LocalModelSettings, pid: int, exited, log_name: str) -> ServerStatus:
    deadline = time.monotonic() + settings.start_timeout_s
    while time.monotonic() < deadline:
        if exited():
            _pid_file(settings).unlink(missing_ok=True)
            raise LocalModelError(f"the local LLM exited at start (pid {pid}); see {log_name}")
        if is_healthy(settings.base_url):
            return status(settings)
        time.sleep(0.5)
    raise LocalModelError(f"the local LLM did not become healthy in {settings.start_timeout_s:g} s; see {log_name}")


def stop(settings: LocalModelSettings, timeout_s: float = 15.0) -> bool:
    """Stop the server this project started; True when one was running."""
    pid = _recorded_pid(settings)
    _pid_file(settings).unlink(missing_ok=True)
    if pid is None or not _alive(pid):
        return False
    os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and _alive(pid):
        time.sleep(0.2)
    if _alive(pid):
        os.killpg(pid, signal.SIGKILL)
    return True


def _pid_file(settings: LocalModelSettings):
    return settings.server_dir / "server.json"


def _recorded_pid(settings: LocalModelSettings) -> int | None:
    try:
        return int(json.loads(_pid_file(settings).read_text())["pid"])
    except (FileNotFoundError, ValueError, KeyError):
        return None


def _alive(pid: int) -> bool:
    try:
        waited, _ = os.waitpid(pid, os.WNOHANG)  # reap it if it is our exited child
        if waited == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return _cmdline_is_server(pid)


def _cmdline_is_server(pid: int) -> bool:
    """Guard against a recycled pid: the process must be a llama.cpp server."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return b"llama-server" in f.read()
    except OSError:
        return False


def _port_in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        return sock.connect_ex((host, port)) == 0

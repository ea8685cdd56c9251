"""Installing and managing the embedded model, without the model: a sparse file stands in for it."""

from __future__ import annotations

import json
import os
import socket

import pytest

from news_reader import local_model, local_server
from news_reader.settings import LocalModelSettings
from tests.conftest import free_port


@pytest.fixture
def settings(tmp_path) -> LocalModelSettings:
    return LocalModelSettings(state_dir=tmp_path, start_timeout_s=5)


def fake_install(settings: LocalModelSettings) -> None:
    """A file of the model's size (sparse, so instant) and a verification marker written after it, beside the real
    llama-server that `make setup` built."""
    settings.server_binary.parent.mkdir(parents=True)
    settings.server_binary.symlink_to(LocalModelSettings().server_binary)
    settings.model_file.parent.mkdir(parents=True)
    with settings.model_file.open("wb") as f:
        f.truncate(local_model.MODEL_SIZE)
    (settings.model_file.parent / (settings.model_file.name + ".sha256")).write_text(local_model.MODEL_SHA256)


def test_a_missing_model_is_not_installed(settings):
    assert not local_model.is_installed(settings)


def test_a_verified_model_of_the_right_size_is_installed(settings):
    fake_install(settings)
    assert local_model.is_installed(settings)


def test_a_model_rewritten_after_verification_is_not_installed(settings):
    fake_install(settings)
    marker = settings.model_file.parent / (settings.model_file.name + ".sha256")
    os.utime(settings.model_file, (marker.stat().st_mtime + 10, marker.stat().st_mtime + 10))
    assert not local_model.is_installed(settings)


def test_a_corrupt_model_file_fails_verification_and_is_removed(tmp_path):
    corrupt = tmp_path / "model.gguf"
    corrupt.write_bytes(b"GGUF but not the model")
    with pytest.raises(local_model.LocalModelError, match="model file is corrupt"):
        local_model.verify(corrupt)
    assert not corrupt.exists()


def test_no_pid_file_means_not_running(settings):
    assert local_server.status(settings).running is False


def test_a_recorded_pid_of_another_program_is_not_taken_for_the_server(settings):
    settings.server_dir.mkdir(parents=True)
    (settings.server_dir / "server.json").write_text(json.dumps({"pid": os.getpid()}))
    assert local_server.status(settings).running is False
    assert local_server.stop(settings) is False


def test_starting_on_a_busy_port_is_a_clear_error(settings):
    fake_install(settings)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port_settings = settings.model_copy(update={"port": busy.getsockname()[1]})
        with pytest.raises(local_model.LocalModelError, match=f"port {port_settings.port} is in use"):
            local_server.start(port_settings)


def test_an_unbuilt_server_is_a_clear_error(settings):
    fake_install(settings)
    settings.server_binary.unlink()
    with pytest.raises(local_model.LocalModelError, match="llama.cpp's server is not built .* run `make setup`"):
        local_server.start(settings)


def test_the_server_serves_the_configured_slots_and_metrics_on_loopback(settings):
    command = local_server.server_command(settings.model_copy(update={"n_parallel": 3, "n_ctx": 12288}))
    assert command[0] == str(settings.server_binary)
    value = {flag: command[command.index(flag) + 1] for flag in ("--parallel", "--ctx-size", "--host")}
    assert value == {"--parallel": "3", "--ctx-size": "12288", "--host": "127.0.0.1"}
    assert {"--kv-unified", "--metrics", "--no-webui"} <= set(command)


def test_a_server_that_dies_at_start_is_reported_with_its_log(settings):
    fake_install(settings)  # a file of zeros: llama.cpp refuses to load it
    with pytest.raises(local_model.LocalModelError, match="exited at start .* see .*server.log"):
        local_server.start(settings.model_copy(update={"port": free_port()}))
    assert local_server.status(settings).running is False


def test_a_server_still_loading_its_model_is_not_healthy(httpserver):
    base_url = httpserver.url_for("/v1")
    assert local_server.is_healthy(base_url) is False
    httpserver.expect_oneshot_request("/health").respond_with_json({"error": {"message": "Loading model"}}, 503)
    assert local_server.is_healthy(base_url) is False
    httpserver.expect_request("/health").respond_with_json({"status": "ok"})
    assert local_server.is_healthy(base_url) is True

"""Fixtures for integration tests: real servers started on 127.0.0.1 and stopped afterwards."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from flux_agent.backends.llama_cpp import embedded_model_path

SERVER_START_TIMEOUT_S = 90.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _stop(process: subprocess.Popen[bytes], grace_s: float) -> None:
    """Terminate a server, and kill it if it does not exit within `grace_s`."""
    process.terminate()
    try:
        process.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def wait_for_server(
    process: subprocess.Popen[bytes], url: str, log_path: Path, timeout_s: float
) -> None:
    """Return once `url` answers 200; fail the test (with the log's tail) if the process
    exits or `timeout_s` passes first."""
    deadline = time.monotonic() + timeout_s
    while True:
        if process.poll() is not None:
            pytest.fail(f"{process.args} exited at start:\n{log_path.read_text()[-3000:]}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"{url} did not answer within {timeout_s:g} s")
        time.sleep(0.5)


@contextmanager
def serve_in_thread(app: Any) -> Iterator[str]:
    """Serve an ASGI app with uvicorn on a free 127.0.0.1 port in this process; yields its URL."""
    import uvicorn

    config = uvicorn.Config(app, host="127.0.0.1", port=_free_port(), log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{config.port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(scope="session")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The embedded model behind `python -m llama_cpp.server` on a free port; yields the /v1 URL."""
    port = _free_port()
    log_path = tmp_path_factory.mktemp("llama-server") / "server.log"
    command = [
        sys.executable, "-m", "llama_cpp.server",
        "--model", str(embedded_model_path()),
        "--host", "127.0.0.1",
        "--port", str(port),
        "--n_ctx", "2048",
        # The server's default cuts a streamed reply short whenever another request
        # arrives; concurrent requests must queue instead.
        "--interrupt_requests", "False",
    ]  # fmt: skip
    base_url = f"http://127.0.0.1:{port}/v1"
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for_server(process, f"{base_url}/models", log_path, SERVER_START_TIMEOUT_S)
        yield base_url
    finally:
        _stop(process, grace_s=15)


@pytest.fixture(scope="module")
def chroma_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    """A `chroma run` server on a free local port; skipped, with the reason, if it cannot start."""
    binary = shutil.which("chroma", path=str(Path(sys.executable).parent)) or shutil.which("chroma")
    if binary is None:
        pytest.skip("the `chroma` CLI that ships with chromadb is not installed here")
    port = _free_port()
    data = tmp_path_factory.mktemp("chroma-server")
    log_path = tmp_path_factory.mktemp("chroma-server-log") / "server.log"
    command = [binary, "run", "--path", str(data), "--host", "127.0.0.1", "--port", str(port)]
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
        reason = _wait_for_heartbeat(process, port, log_path)
        if reason:
            pytest.skip(f"the Chroma server did not start ({' '.join(command)}): {reason}")
        yield "127.0.0.1", port
    finally:
        _stop(process, grace_s=10)


def _wait_for_heartbeat(process: subprocess.Popen[bytes], port: int, log_path: Path) -> str:
    """Wait until the server answers; returns why it did not, or "" once it does."""
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log_path.read_text(errors="replace")[-800:]
            return f"exited with code {process.returncode}: {tail}"
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/v2/heartbeat", timeout=1).is_success:
                return ""
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    return f"no heartbeat on port {port} after {SERVER_START_TIMEOUT_S:g} s"

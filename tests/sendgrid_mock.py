"""SendGrid for tests: the contract mock of the Mail Send API, and a scripted local HTTP server.

``sendgrid_mock`` (session fixture) runs Stoplight Prism on SendGrid's published spec and
yields its base URL: requests that violate the spec get 400 (reasons in the ``sl-violations``
header), valid ones 202. The spec is ``$SENDGRID_CONTRACT_SPEC`` or the shared SendGrid folder
beside the repository (``../shared/sendgrid/spec/mail_send.contract.json``); without it, or
without Node and npm, the tests that need the mock are skipped with the reason. Prism is
installed once into ``$PRISM_DIR`` (default ``~/.cache/prism-5.14.2``); 5.14.2 is the last
release that runs on Node 20.

:class:`ScriptedServer` answers what a test scripts (statuses and headers SendGrid may send
that the mock cannot, such as 429 with ``Retry-After``, or a dropped connection) and counts the
requests it got.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PRISM_VERSION = "5.14.2"
#: the shared folder's spec, relative to the repository root
DEFAULT_SPEC = REPO.parent / "shared" / "sendgrid" / "spec" / "mail_send.contract.json"
#: Prism starts in about 1.5 s; the first start of a session may also install it
START_TIMEOUT = 60.0
INSTALL_TIMEOUT = 300.0


def contract_spec() -> Path:
    """The Mail Send contract spec, or skip the test with the reason it is missing."""
    named = os.environ.get("SENDGRID_CONTRACT_SPEC")
    if named:
        path = Path(named).expanduser()
        if not path.is_file():
            pytest.skip(
                f"SendGrid contract spec not found: SENDGRID_CONTRACT_SPEC={named} is not a file"
            )
        return path
    if not DEFAULT_SPEC.is_file():
        pytest.skip(
            "SendGrid contract spec not found: set SENDGRID_CONTRACT_SPEC to "
            "mail_send.contract.json (or provide ../shared/sendgrid/spec/ beside the repository)"
        )
    return DEFAULT_SPEC


def prism_executable() -> Path:
    """Prism's command, installed from npm on first use, or skip when Node or npm is missing."""
    directory = Path(
        os.environ.get("PRISM_DIR") or Path.home() / ".cache" / f"prism-{PRISM_VERSION}"
    ).expanduser()
    executable = directory / "node_modules" / ".bin" / "prism"
    if not shutil.which("node"):
        pytest.skip("the SendGrid contract mock needs Node.js (node not found on PATH)")
    if executable.exists():
        return executable
    npm = shutil.which("npm")
    if not npm:
        pytest.skip(f"the SendGrid contract mock needs npm to install Prism into {directory}")
    try:
        done = subprocess.run(
            [
                npm,
                "install",
                "--prefix",
                str(directory),
                "--no-audit",
                "--no-fund",
                f"@stoplight/prism-cli@{PRISM_VERSION}",
            ],
            capture_output=True,
            text=True,
            timeout=INSTALL_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.skip(f"installing Prism {PRISM_VERSION} with npm took over {INSTALL_TIMEOUT:.0f} s")
    if done.returncode != 0 or not executable.exists():
        pytest.skip(f"could not install Prism {PRISM_VERSION} with npm: {done.stderr[-500:]}")
    return executable


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _accepts(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
    except OSError:
        return False
    return True


@contextlib.contextmanager
def prism_mock(spec: Path) -> Iterator[str]:
    """Run the contract mock of ``spec`` on a free port; yield its base URL; stop it."""
    executable = prism_executable()
    port = free_port()
    log_file = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed below, read on failure
        prefix="prism-", suffix=".log", delete=False
    )
    process = subprocess.Popen(
        [str(executable), "mock", "-h", "127.0.0.1", "-p", str(port), str(spec)],
        stdout=log_file,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not _accepts(port):
            if process.poll() is not None or time.monotonic() > deadline:
                log_file.flush()
                output = Path(log_file.name).read_text(errors="replace")[-2000:]
                pytest.fail(f"the SendGrid contract mock did not start on port {port}:\n{output}")
            time.sleep(0.1)  # polling for readiness, not timing anything under test
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
        log_file.close()
        Path(log_file.name).unlink(missing_ok=True)


@pytest.fixture(scope="session")
def sendgrid_mock() -> Iterator[str]:
    """The base URL of SendGrid's contract mock (one Prism per test session)."""
    with prism_mock(contract_spec()) as url:
        yield url


# --- a scripted server ------------------------------------------------------------------------


@dataclass
class Answer:
    """One scripted answer: a status with headers and a JSON body, or ``drop`` (read the whole
    request, then close the connection without answering), or ``hang`` (read it, then wait
    until the server stops, so the client times out)."""

    status: int = 202
    headers: dict[str, str] = field(default_factory=dict)
    body: dict | None = None
    drop: bool = False
    hang: bool = False


@dataclass
class Received:
    """A request the scripted server got."""

    path: str
    headers: dict[str, str]
    body: dict


class ScriptedServer:
    """An HTTP server on 127.0.0.1 answering requests with ``answers`` in turn (the last one
    repeats); ``requests`` holds what it received. Use as a context manager; ``url`` is its
    base URL."""

    def __init__(self, *answers: Answer):
        self.answers = list(answers) or [Answer()]
        self.requests: list[Received] = []
        self._released = threading.Event()
        self._lock = threading.Lock()
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                with server._lock:
                    server.requests.append(
                        Received(self.path, dict(self.headers), json.loads(raw or b"{}"))
                    )
                    index = min(len(server.requests), len(server.answers)) - 1
                    answer = server.answers[index]
                if answer.drop:
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if answer.hang:
                    server._released.wait()
                    self.close_connection = True
                    return
                payload = json.dumps(answer.body).encode() if answer.body is not None else b""
                self.send_response(answer.status)
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                if payload:
                    self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format, *args):  # quiet: the test asserts on `requests`
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        # a short poll interval: shutdown() returns within it
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def url(self) -> str:
        """The server's base URL."""
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> ScriptedServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._released.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(10)


def main(argv: list[str] | None = None) -> int:
    """``python -m tests.sendgrid_mock COMMAND…``: run COMMAND with the contract mock up and the
    ``sendgrid_default`` connection pointing at it (what ``make demo-sendgrid`` does)."""
    import sys

    command = list(sys.argv[1:] if argv is None else argv)
    if not command:
        print("usage: python -m tests.sendgrid_mock COMMAND [ARG…]", file=sys.stderr)
        return 2
    try:
        spec = contract_spec()
    except pytest.skip.Exception as exc:
        print(f"cannot start the SendGrid contract mock: {exc}", file=sys.stderr)
        return 2
    with prism_mock(spec) as url:
        connection = json.dumps({"conn_type": "http", "password": "SG.demo", "host": url})
        print(f"SendGrid contract mock on {url} (sendgrid_default points at it)", flush=True)
        env = {**os.environ, "AIRFLOW_CONN_SENDGRID_DEFAULT": connection}
        return subprocess.run(command, env=env, check=False).returncode


if __name__ == "__main__":
    raise SystemExit(main())

"""Fixtures for the browser tests: a JupyterLab server and headless Chromium driven by Playwright.

These tests are opt-in (``make e2e`` sets ``WORKBENCH_E2E=1``): they need Debian's Chromium at
``/usr/bin/chromium`` (or ``WORKBENCH_CHROMIUM``), the ``playwright`` package (no browser
download: Playwright drives the system Chromium), a generated smoke corpus, and a few minutes.
Under a plain ``pytest tests`` they are reported as skipped.

The server runs on a free localhost port with a random token, in a temporary folder holding
copies of the notebooks with the smoke parameters injected (the checkout is never edited), and
is always stopped at teardown: kernels first through the REST API, then the process group.
Every wait is bounded and its failure names what it waited for.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

E2E_ENV = "WORKBENCH_E2E"
# Flags known to work for headless Chromium on machines with a closed network: without the
# background-networking ones Chromium keeps trying (and failing) to reach Google's hosts.
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
LAB_START_TIMEOUT_S = float(os.environ.get("WORKBENCH_E2E_LAB_TIMEOUT", "120"))


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "e2e: drives JupyterLab in headless Chromium (run with `make e2e`)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Opt-in by environment rather than a command-line flag: a conftest below the rootdir may
    # not add options, and `make test` must choose explicitly whether a browser is involved.
    if os.environ.get(E2E_ENV) == "1":
        return
    skip = pytest.mark.skip(reason=f"browser test: run `make e2e` (sets {E2E_ENV}=1)")
    for item in items:
        if "e2e" in item.keywords:
            item.add_marker(skip)


def project_root() -> Path:
    return Path(__file__).resolve().parents[2]


def artifacts_dir() -> Path:
    """Where screenshots and executed notebooks go: ``$WORKBENCH_E2E_OUT`` or ``<runs>/e2e``."""
    from workbench import paths

    out = Path(os.environ.get("WORKBENCH_E2E_OUT") or paths.runs_dir() / "e2e")
    out.mkdir(parents=True, exist_ok=True)
    return out


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (the server is told not to retry another)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class LabServer:
    """A running ``jupyter lab`` process serving ``root``."""

    proc: subprocess.Popen
    port: int
    token: str
    root: Path
    log: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        """Browser URL of ``path`` (e.g. ``lab/tree/x.ipynb``) carrying the token."""
        sep = "&" if "?" in path else "?"
        return f"{self.base}/{path}{sep}token={self.token}"

    def api(self, path: str, method: str = "GET", timeout: float = 5.0) -> object:
        req = urllib.request.Request(f"{self.base}/api/{path}", method=method,
                                     headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(req, timeout=timeout) as r:
            body = r.read()
        return json.loads(body) if body else None

    def log_tail(self, n: int = 40) -> str:
        lines = self.log.read_text(errors="replace").splitlines() if self.log.exists() else []
        return "\n".join(lines[-n:])

    def stop(self, timeout: float = 20.0) -> None:
        """Shut kernels down, then the server; escalate to SIGKILL if it lingers."""
        if self.proc.poll() is None:
            try:  # kernels run in their own sessions: a signal to the server's group misses them
                for k in self.api("kernels"):  # type: ignore[union-attr]
                    self.api(f"kernels/{k['id']}", method="DELETE", timeout=10)
            except (OSError, urllib.error.URLError, ValueError):
                pass
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.proc.wait(5)


def start_lab(root: Path, log: Path, timeout: float = LAB_START_TIMEOUT_S,
              extra_args: tuple[str, ...] = (), env: dict[str, str] | None = None) -> LabServer:
    """Start JupyterLab on a free localhost port with a random token; wait until its API answers.

    Raises RuntimeError naming the port, the wait and the server log's tail when the process
    exits or does not answer ``GET /api/status`` within ``timeout`` seconds.
    """
    port, token = free_port(), secrets.token_hex(16)
    # Settings and workspaces of this server only: no opt-in prompt for Jupyter news (a toast
    # over the notebook), and nothing written into the user's JupyterLab state.
    settings = root.parent / f"{root.name}-lab-settings"
    (settings / "@jupyterlab" / "apputils-extension").mkdir(parents=True, exist_ok=True)
    (settings / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    jupyter = Path(sys.executable).with_name("jupyter")
    cmd = [
        str(jupyter) if jupyter.exists() else "jupyter", "lab", "--no-browser",
        "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
        # lets the test read cell states from the page (window.jupyterapp)
        "--LabApp.expose_app_in_browser=True",
        f"--LabApp.user_settings_dir={settings}", f"--LabApp.workspaces_dir={root.parent / (root.name + '-lab-workspaces')}",
        # no network here: do not ask jupyter.org for news or updates
        "--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        *extra_args,
    ]
    if os.geteuid() == 0:  # CI containers run as root; JupyterLab refuses root unless told
        cmd.append("--allow-root")
    fh = log.open("w")
    proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, cwd=root, start_new_session=True,
                            env={**os.environ, **(env or {})})
    server = LabServer(proc, port, token, root, log)
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"JupyterLab exited with code {proc.returncode} before answering on port {port}; "
                               f"log {log}:\n{server.log_tail()}")
        try:
            server.api("status", timeout=2)
            return server
        except (OSError, urllib.error.URLError, ValueError):
            pass
        if time.monotonic() > deadline:
            server.stop()
            raise RuntimeError(f"JupyterLab did not answer GET /api/status on 127.0.0.1:{port} within {timeout:.0f} s; "
                               f"log {log}:\n{server.log_tail()}")
        time.sleep(0.5)


def smoke_copy(notebook: Path, dest: Path) -> Path:
    """Copy ``notebook`` into ``dest`` with the smoke parameters of tests/notebooks/smoke.yaml
    injected after its ``parameters`` cell (as papermill does); notebooks not listed there keep
    their defaults, which must then be smoke ones."""
    import nbformat
    from papermill.iorw import load_notebook_node
    from papermill.parameterize import parameterize_notebook

    from workbench.batch import load_grid

    grid = project_root() / "tests" / "notebooks" / "smoke.yaml"
    params: dict = {}
    for cell in load_grid(grid):
        if cell.notebook.resolve() == notebook.resolve():
            assert not cell.problems, cell.problems
            params = dict(cell.parameters)
            break
    nb = load_notebook_node(str(notebook))  # papermill's loader gives every cell its tags list
    if params:
        nb = parameterize_notebook(nb, params)
    out = dest / notebook.name
    nbformat.write(nb, out)
    return out


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabServer]:
    """JupyterLab serving smoke copies of the notebooks (session-wide; stopped at teardown)."""
    root = tmp_path_factory.mktemp("lab")
    for nb in sorted((project_root() / "notebooks").glob("*.ipynb")):
        smoke_copy(nb, root)
    # Notebook 06 trains its own smoke run into an empty runs folder, so what it shows does not
    # depend on whichever runs this checkout happens to hold (data and feature cache are shared).
    # WORKBENCH_E2E_RUNS points it at an existing runs folder instead (its smoke run is reused).
    runs = Path(os.environ.get("WORKBENCH_E2E_RUNS") or tmp_path_factory.mktemp("runs"))
    t0 = time.perf_counter()
    server = start_lab(root, artifacts_dir() / "jupyterlab.log", env={"WORKBENCH_RUNS": str(runs)})
    print(f"\n[e2e] JupyterLab answered on port {server.port} after {time.perf_counter() - t0:.1f} s")
    try:
        yield server
    finally:
        server.stop()
        assert server.proc.poll() is not None, "JupyterLab server still running after stop()"


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """:func:`artifacts_dir`, for test modules (they cannot import this conftest)."""
    return artifacts_dir()


@pytest.fixture
def lab_starter():
    """:func:`start_lab` itself, for tests of how a failing server is reported."""
    return start_lab


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    """Headless system Chromium under Playwright (never a downloaded browser)."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (no browser download)")
    exe = os.environ.get("WORKBENCH_CHROMIUM", "/usr/bin/chromium")
    if not Path(exe).exists():
        pytest.fail(f"Chromium not found at {exe}: apt-get install -y chromium (.ci/run does on CI)")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS, timeout=60_000)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser: object, lab: LabServer, request: pytest.FixtureRequest) -> Iterator[object]:
    """A fresh browser context and page (1400x1000) for one test; the browser console's errors
    and warnings (e.g. lost WebGL contexts) are written to ``<artifacts>/console-<test>.txt``."""
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})  # type: ignore[attr-defined]
    pg = ctx.new_page()
    pg.console_errors = []  # type: ignore[attr-defined]
    pg.artifacts = artifacts_dir()  # type: ignore[attr-defined]
    pg.on("console", lambda m: pg.console_errors.append(f"{m.type}: {m.text}") if m.type in ("error", "warning") else None)
    pg.on("pageerror", lambda e: pg.console_errors.append(f"pageerror: {e}"))
    try:
        yield pg
    finally:
        (pg.artifacts / f"console-{request.node.name}.txt").write_text("\n".join(pg.console_errors) + "\n")
        ctx.close()

"""Notebook 05's widgets driven in a real browser: JupyterLab on 127.0.0.1, headless Chromium, a slider moved.

The cells run in a live kernel, as a reader runs them; the test moves the β slider of ``loss_explorer`` and the
step slider of ``training_dynamics_view`` with the keyboard and checks that each figure (its ``<img>`` src) and
its readout text changed, that no cell printed a traceback, and that the browser console holds no error from the
widget code.

Needs the Debian packages ``chromium`` and ``chromium-driver`` (``make browser`` installs them when run as root;
``make test`` runs it first) and Selenium. Without them the test is skipped with the reason, except where
``ZEPHYR_BROWSER_TESTS=required`` (set by ``.ci/run``): there a missing browser fails the run.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("ZEPHYR_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("ZEPHYR_CHROMEDRIVER", "/usr/bin/chromedriver")
# This machine's network is closed: without these flags Chromium hangs on refused background connections.
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage", "--window-size=1400,1800"]
TIMEOUT = 60.0  # seconds for any one wait (server up, page loaded, cells run, a figure redrawn)

# Console errors that are JupyterLab's own and not the widgets': requests it makes on a fresh profile or that
# fail on a machine without network. They are allowed; every other SEVERE console entry fails the test. (With
# JupyterLab 4.6 and the settings below, news feed and update check off and a read-only extension manager, none
# of them showed up on this project's machines: the console held only two DEBUG lines.)
JUPYTER_NOISE = [
    re.compile(r"/favicon"),                       # a page without a favicon yet
    re.compile(r"/api/translations"),              # language packs: none installed
    re.compile(r"/lab/api/news|/lab/api/update"),  # the news feed / update check, fetched server-side
    re.compile(r"/api/workspaces"),                # the first visit has no saved workspace
]

WIDGET_CELLS = [
    "from zephyr_tutorial.widgets import loss_explorer, training_dynamics_view",
    "loss_explorer(beta=0.1)",
    # the shape of TRL's DPOTrainer log_history: one entry per logged step, then a summary without rewards
    ("history = [{'step': s, 'loss': 0.69 - 0.04 * s, 'rewards/chosen': 0.02 * s, 'rewards/rejected': -0.01 * s,\n"
     "            'rewards/margins': 0.03 * s, 'rewards/accuracies': min(1.0, 0.2 * s)} for s in range(1, 6)]\n"
     "history.append({'step': 5, 'train_runtime': 12.0})\n"
     "training_dynamics_view(history)"),
]


@pytest.fixture()
def browser_available():
    """Skips (or, where ZEPHYR_BROWSER_TESTS=required, fails) without Chromium, ChromeDriver and Selenium."""
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not shutil.which(path)]
    reason = None
    if missing:
        reason = (f"no browser: {', '.join(missing)} not found (Debian packages chromium and chromium-driver; "
                  "`make browser` installs them when run as root)")
    else:
        try:
            import selenium  # noqa: F401
        except ImportError:
            reason = "selenium is not installed (pip install -e '.[dev]')"
    if reason:
        if os.environ.get("ZEPHYR_BROWSER_TESTS") == "required":
            pytest.fail(f"ZEPHYR_BROWSER_TESTS=required but {reason}")
        pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _write_notebook(path: Path) -> None:
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook

    notebook = new_notebook(cells=[new_code_cell(source) for source in WIDGET_CELLS])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(notebook, path)


def _wait_until(condition, what: str, timeout: float = TIMEOUT, poll: float = 0.25):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(poll)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


@pytest.fixture()
def jupyterlab(browser_available, tmp_path):
    """A JupyterLab server on 127.0.0.1 (a free port, token auth, root dir and config in tmp_path)."""
    root = tmp_path / "root"
    root.mkdir()
    _write_notebook(root / "widgets.ipynb")
    token = secrets.token_hex(16)
    port = _free_port()
    env = dict(os.environ)
    for name, folder in (("JUPYTER_CONFIG_DIR", "config"), ("JUPYTER_RUNTIME_DIR", "runtime"),
                         ("JUPYTERLAB_SETTINGS_DIR", "settings"), ("JUPYTERLAB_WORKSPACES_DIR", "workspaces")):
        env[name] = str(tmp_path / folder)
    # no news feed, no update check: both would reach for the network
    notification = tmp_path / "settings" / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    notification.parent.mkdir(parents=True)
    notification.write_text(json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    log = (tmp_path / "jupyterlab.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ServerApp.ip=127.0.0.1",
         f"--ServerApp.port={port}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
         f"--ServerApp.root_dir={root}", "--LabApp.expose_app_in_browser=True",
         "--LabApp.extension_manager=readonly"]  # no PyPI look-ups from the extension manager
        + (["--allow-root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []),
        env=env, stdout=log, stderr=subprocess.STDOUT, cwd=root)
    base = f"http://127.0.0.1:{port}"

    def up():
        if server.poll() is not None:
            raise AssertionError(f"jupyter lab exited with {server.returncode}:\n"
                                 + (tmp_path / "jupyterlab.log").read_text()[-3000:])
        try:
            with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2) as response:
                return response.status == 200
        except OSError:
            return False

    try:
        _wait_until(up, "jupyter lab to answer on 127.0.0.1")
        yield {"url": f"{base}/lab/tree/widgets.ipynb?token={token}", "log": tmp_path / "jupyterlab.log"}
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()


@pytest.fixture()
def chromium(browser_available, tmp_path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which(CHROMIUM)
    for flag in CHROMIUM_FLAGS + [f"--user-data-dir={tmp_path / 'chromium-profile'}"]:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(shutil.which(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(TIMEOUT)
    try:
        yield driver
    finally:
        driver.quit()


def _widget_state(driver, index: int) -> dict:
    """The ``index``-th widget output of the notebook: its figure's src and its readout text."""
    return driver.execute_script("""
        const views = document.querySelectorAll('.jp-Notebook .jp-Cell .jp-OutputArea-output .widget-vbox');
        const roots = Array.from(views).filter(v => !v.parentElement.closest('.widget-vbox'));
        const root = roots[arguments[0]];
        if (!root) return null;
        const img = root.querySelector('.jp-OutputArea-output img');
        const readout = root.querySelector('.widget-html-content');
        return {src: img ? img.getAttribute('src') : null, readout: readout ? readout.textContent : null,
                sliders: root.querySelectorAll('.noUi-handle').length};
    """, index)


def _press_on_slider(driver, index: int, slider: int, key: str) -> None:
    handles = driver.execute_script("""
        const views = document.querySelectorAll('.jp-Notebook .jp-Cell .jp-OutputArea-output .widget-vbox');
        const roots = Array.from(views).filter(v => !v.parentElement.closest('.widget-vbox'));
        return Array.from(roots[arguments[0]].querySelectorAll('.noUi-handle'));
    """, index)
    handle = handles[slider]
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", handle)
    handle.click()  # focuses the handle; a click on the handle itself does not move it
    handle.send_keys(key)


def _cell_errors(driver) -> list[str]:
    """Tracebacks the cells printed (a widget callback that raises prints one into its Output widget).

    JupyterLab renders error outputs and stderr alike; a library warning on stderr is not an error.
    """
    texts = driver.execute_script("""
        return Array.from(document.querySelectorAll(
            '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]'
        )).map(e => e.textContent.slice(0, 3000));
    """)
    return [t for t in texts if "Traceback" in t or re.search(r"\b\w*(Error|Exception)\b", t)]


def test_widgets_redraw_in_jupyterlab_when_a_slider_moves(jupyterlab, chromium, capsys):
    from selenium.webdriver.common.keys import Keys

    started = time.monotonic()
    driver = chromium
    driver.get(jupyterlab["url"])
    _wait_until(lambda: driver.execute_script(
        "const app = window.jupyterapp; const nb = app && app.shell.currentWidget;"
        "return !!(nb && nb.sessionContext && nb.sessionContext.session && nb.sessionContext.session.kernel"
        " && nb.sessionContext.session.kernel.status === 'idle');"), "the notebook's kernel to be idle")
    driver.execute_script("window.jupyterapp.commands.execute('notebook:run-all-cells');")

    def drawn(index):
        errors = _cell_errors(driver)
        if errors:
            raise AssertionError("a cell printed an error:\n" + "\n".join(errors))
        state = _widget_state(driver, index)
        return state if state and state["src"] and state["readout"] else None

    explorer = _wait_until(lambda: drawn(0), "loss_explorer to draw its figure and readout")
    dynamics = _wait_until(lambda: drawn(1), "training_dynamics_view to draw its figure and readout")
    assert explorer["sliders"] == 5 and dynamics["sliders"] == 1
    assert "margin h = +6.00" in explorer["readout"]
    assert "rewards/margins +0.1500" in dynamics["readout"]  # the last step, 5, is selected first
    loaded = time.monotonic()

    _press_on_slider(driver, 0, 0, Keys.ARROW_RIGHT)  # β: one step of the log slider, 0.1 -> 10^-0.95
    moved = _wait_until(lambda: (s := drawn(0)) and s["src"] != explorer["src"] and s["readout"] != explorer["readout"]
                        and s, "loss_explorer to redraw after the β slider moved")
    assert "margin h = +6.00" in moved["readout"]  # β changes the rewards, not the margin
    assert "chosen +0.224" in moved["readout"]  # β (−20 − (−22)) = 10^-0.95 · 2
    beta_redraw = time.monotonic()

    _press_on_slider(driver, 1, 0, Keys.ARROW_LEFT)  # step 5 -> 4
    stepped = _wait_until(lambda: (s := drawn(1)) and s["src"] != dynamics["src"]
                          and s["readout"] != dynamics["readout"] and s,
                          "training_dynamics_view to redraw after the step slider moved")
    assert "rewards/margins +0.1200" in stepped["readout"]
    finished = time.monotonic()

    assert _cell_errors(driver) == [], "a cell printed an error or a traceback"
    console = driver.get_log("browser")
    errors = [e["message"] for e in console if e["level"] == "SEVERE"
              and not any(pattern.search(e["message"]) for pattern in JUPYTER_NOISE)]
    assert errors == [], f"browser console errors: {errors}"
    ignored = sum(1 for e in console if e["level"] == "SEVERE") - len(errors)
    with capsys.disabled():
        print(f"\n[browser] {driver.capabilities.get('browserVersion')} headless, JupyterLab on 127.0.0.1: "
              f"cells ran and drew in {loaded - started:.1f} s; β slider -> figure and readout redrawn in "
              f"{beta_redraw - loaded:.1f} s; step slider -> redrawn in {finished - beta_redraw:.1f} s; "
              f"console: {len(console)} entries, {ignored} known Jupyter errors ignored, 0 from the widgets")

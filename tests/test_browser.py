"""The tutorial in a real browser: JupyterLab on a loopback port with a token, Debian's Chromium driven headless by Playwright.

The tutorial (a copy, so nothing is written under nbs/) runs top to bottom in JupyterLab's own kernel; then every widget must
have rendered (its DOM elements exist, tables have rows, plots have images), and clicking a run's box and picking a drift
window must change what the views show. Screenshots go to tests/artifacts/browser/ (gitignored)."""
import json, os, secrets, shutil, sys, time, urllib.request
from pathlib import Path

import pytest

from conftest import free_port, serving

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = ROOT / "tests" / "artifacts" / "browser"
# flags that work here, as root, without network
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is missing: `bash scripts/dev test` installs Debian's chromium as root")


def _settings(folder: Path):
    "JupyterLab user settings for the test: keep every cell in the DOM, no news or update checks (no network here)."
    for plugin, values in {"notebook-extension/tracker": {"windowingMode": "none"},
                           "apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False}}.items():
        p = folder / "@jupyterlab" / f"{plugin}.jupyterlab-settings"
        p.parent.mkdir(parents=True, exist_ok=True); p.write_text(json.dumps(values))


@pytest.fixture
def lab(tmp_path, clean_env):
    "A JupyterLab server on a free loopback port with a random token, serving a folder with a copy of the tutorial."
    root = tmp_path / "lab"; root.mkdir()
    shutil.copy(ROOT / "nbs" / "tutorials" / "lifecycle.ipynb", root)
    _settings(tmp_path / "lab-settings")
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(tmp_path / "jupyter-config"), "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
           "JUPYTERLAB_SETTINGS_DIR": str(tmp_path / "lab-settings"), "JUPYTERLAB_WORKSPACES_DIR": str(tmp_path / "lab-workspaces")}
    port, token = free_port(), secrets.token_hex(16)
    with serving([BIN / "jupyter", "lab", "--no-browser", "--ip=127.0.0.1", f"--port={port}", "--ServerApp.port_retries=0",
                  f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}", "--LabApp.extension_manager=readonly",
                  *(["--allow-root"] if os.geteuid() == 0 else [])],
                 f"http://127.0.0.1:{port}/api/status?token={token}", tmp_path / "jupyterlab.log", cwd=root, env=env, timeout=90):
        url = f"http://127.0.0.1:{port}"
        with pytest.raises(urllib.error.HTTPError):            # the token is required
            urllib.request.urlopen(f"{url}/api/contents", timeout=5)
        yield url, token, tmp_path


def _prompts(page):
    "The input prompts of the notebook's code cells, e.g. ['[1]:', '[*]:', '[ ]:']."
    return page.eval_on_selector_all(".jp-CodeCell .jp-InputPrompt", "els => els.map(e => e.textContent.trim())")


def _run_all(page, timeout):
    "Run > Run All Cells, then wait until every code cell has run (a numbered prompt) or one failed (the run stops)."
    page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
    page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()
    page.wait_for_function("() => [...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')].some(e => e.textContent.includes('*'))",
                           timeout=30_000)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ps = _prompts(page)
        if ps and not any("*" in p for p in ps): return ps
        time.sleep(1)
    raise AssertionError(f"the tutorial did not finish within {timeout} s: {_prompts(page)}")


def test_tutorial_in_jupyterlab(lab):
    from playwright.sync_api import sync_playwright, expect
    url, token, tmp = lab
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shots = []
    def shot(locator, name):
        p = ARTIFACTS / f"{name}.png"; getattr(locator, "scroll_into_view_if_needed", lambda: None)(); page.screenshot(path=str(p)); shots.append(p)
    t0 = time.monotonic()
    with sync_playwright() as pw:
        # Debian's Chromium (Playwright's own download does not work here); Playwright gives it a fresh user-data-dir
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS, headless=True)
        page = browser.new_page(viewport={"width": 1500, "height": 1100})
        try:
            page.set_default_timeout(60_000)
            page.goto(f"{url}/lab/tree/lifecycle.ipynb?token={token}")
            page.wait_for_selector(".jp-NotebookPanel .jp-Cell")
            try:                                                        # nbdev-clean strips the kernelspec: JupyterLab asks once
                page.locator(".jp-Dialog button.jp-mod-accept", has_text="Select").click(timeout=10_000)
            except Exception: pass
            page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=90_000)   # the kernel is up
            prompts = _run_all(page, timeout=600)
            if any(p in ("[ ]:", "") for p in prompts):                # a cell failed and the run stopped there
                shot(page, "failed")
                errors = page.eval_on_selector_all("[data-mime-type='application/vnd.jupyter.stderr']", "els => els.map(e => e.textContent)")
                raise AssertionError(f"the tutorial failed in JupyterLab: prompts {prompts}\n" + "\n".join(e[-1500:] for e in errors[-2:]))
            ran = time.monotonic() - t0

            # every widget rendered: its elements, table rows, plots as images
            browsers = page.locator(".mlops-run-browser")
            expect(browsers).to_have_count(2)                           # shown after training, and again after tuning
            table = browsers.nth(1).locator(".mlops-run-table")
            assert table.locator(".mlops-select input[type=checkbox]").count() >= 2
            comparison = browsers.nth(1).locator(".mlops-comparison")
            expect(comparison).to_be_visible()
            assert comparison.locator("table tr").count() > 2 and comparison.locator("img").count() >= 1
            shot(browsers.nth(1), "run-browser")
            tuning = page.locator(".mlops-tuning-view")
            expect(tuning.locator("img.mlops-plot")).to_be_visible()
            assert tuning.locator(".mlops-trials table tr").count() > 1
            expect(tuning).to_contain_text("8 trials")
            shot(tuning, "tuning-view")
            models = page.locator(".mlops-model-view")
            assert models.locator(".mlops-versions table tr").count() == 3   # header and two versions
            expect(models.locator(".mlops-versions")).to_contain_text("champion")
            expect(models.locator("button", has_text="Champion")).to_be_disabled()   # the champion is picked: nothing to promote
            models.locator("select").first.select_option("1")
            expect(models.locator("button", has_text="Promote v1")).to_be_enabled()
            expect(models.locator(".mlops-details")).to_contain_text("Version 1")
            shot(models, "model-view")
            drift = page.locator(".mlops-drift-view")
            assert drift.locator(".mlops-drift-table table tr").count() > 30    # a row per feature
            expect(drift.locator("img.mlops-plot").first).to_be_visible()
            expect(drift).to_contain_text("Window rows 100-199")
            shot(drift, "drift-view")

            # clicking changes the views: untick a compared run, pick another drift window
            ticked = table.locator(".mlops-select input[type=checkbox]:checked")
            expect(ticked).to_have_count(2)
            ticked.first.click()
            expect(comparison).to_have_count(0)
            expect(browsers.nth(1).locator(".mlops-compare")).to_contain_text("Tick one more run")
            expect(browsers.nth(0).locator(".mlops-compare")).to_contain_text("Tick one more run")   # the same widget, both views
            shot(browsers.nth(1), "run-browser-after-click")
            before = drift.locator(".mlops-drift-table").inner_text()
            drift.locator("select").first.select_option("rows 0-99")
            expect(drift).to_contain_text("Window rows 0-99")
            expect(drift.locator(".mlops-drift-table")).not_to_have_text(before)   # retried: each widget's state arrives as its own message
            shot(drift, "drift-view-after-click")
        except Exception:
            page.screenshot(path=str(ARTIFACTS / "failure.png")); print(f"\nscreenshot of the failure: {ARTIFACTS / 'failure.png'}")
            raise
        finally:
            browser.close()
    print(f"\ntutorial ran in JupyterLab in {ran:.0f} s; screenshots:\n" + "\n".join(f"  {p}" for p in shots))

"""The registry as people see it: MLflow's own UI (a real `mlflow server` on loopback) in Debian's Chromium, on a workspace
where the real train and validate pipelines made two champions and refused a third version.

The registered model's page must show the champion history as a table (when, from, to, who, why, verdict), newest first;
a version's page its verdict, metrics, data fingerprint and where its reports are. Screenshots go to tests/artifacts/browser/."""
import os

import pytest

from conftest import BIN, free_port, mlops_nb, serving
from test_browser import ARTIFACTS, CHROMIUM, FLAGS

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is missing: `bash scripts/dev test` installs Debian's chromium as root")]


@pytest.fixture
def mlflow_ui(project, tmp_path):
    "Two promotions and a refused challenger, by the pipelines, then MLflow's server on the workspace store."
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    # as the demo: logistic regression, then gradient boosting (both pass), then a dummy (refused)
    for estimator, passes in (("logistic_regression", True), ("auto", True), ("dummy", False)):
        r = mlops_nb("run", "train", "-p", "estimator", estimator, cwd=project, env=env)
        assert r.returncode == 0, r.stderr[-2000:]
        r = mlops_nb("run", "validate", cwd=project, env=env)
        assert (r.returncode == 0) == passes, r.stderr[-2000:]
    port = free_port()
    with serving([BIN / "mlflow", "server", "--backend-store-uri", f"sqlite:///{project / 'workspace' / 'mlflow.db'}",
                  "--host", "127.0.0.1", "--port", port, "--workers", "1"], f"http://127.0.0.1:{port}/health",
                 tmp_path / "mlflow-server.log", cwd=tmp_path):
        yield f"http://127.0.0.1:{port}"


def test_champion_history_in_mlflow_ui(mlflow_ui, project):
    from playwright.sync_api import sync_playwright, expect
    from mlops_nb.data import fingerprint, load_data
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS, headless=True)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(60_000)
        expect.set_options(timeout=60_000)   # MLflow's UI can take more than expect's default 5 s to render on a loaded 2-core box
        try:
            page.goto(f"{mlflow_ui}/#/models/breast_cancer")
            expect(page.get_by_text("Champion: version 2")).to_be_visible()
            table = page.locator("table", has=page.locator("th", has_text="verdict of"))   # the description, rendered as a table
            expect(table).to_be_visible()
            rows = [[c.strip() for c in r.locator("td").all_inner_texts()] for r in table.locator("tbody tr").all()]
            assert [r[1:4] + r[6:] for r in rows] == [["promote", "1", "2", "passed"], ["promote", "none", "1", "passed"]], rows
            assert all(r[0].startswith("20") and "@" in r[4] and "passed the validation gate" in r[5] for r in rows), rows
            page.screenshot(path=str(ARTIFACTS / "mlflow-model.png"), full_page=True)

            page.goto(f"{mlflow_ui}/#/models/breast_cancer/versions/3")
            expect(page.get_by_text("Verdict: failed the validation gate")).to_be_visible()
            expect(page.get_by_text("does not beat the trivial baseline", exact=False).first).to_be_visible()
            metrics = page.locator("table", has=page.locator("th", has_text="challenger at the gate"))
            expect(metrics).to_contain_text("roc_auc")
            fp = fingerprint(load_data(str(project / "data" / "breast_cancer.csv")))
            expect(page.get_by_text(fp, exact=False).first).to_be_visible()
            expect(page.get_by_text("breast_cancer-v3-validation.html", exact=False).first).to_be_visible()
            page.screenshot(path=str(ARTIFACTS / "mlflow-version.png"), full_page=True)
        except Exception:
            page.screenshot(path=str(ARTIFACTS / "mlflow-failure.png"))
            raise
        finally:
            browser.close()

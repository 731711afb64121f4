"""The report of a small real search, opened in headless Chromium: it draws every figure without an error."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright
from test_info import add_optional_files, make_tune_run

from open_autoglm.report import write_report

pytestmark = pytest.mark.slow

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"  # screenshots to look at after a run
HEADINGS = {"en": ["Learning curves", "Parameter importance"], "zh": ["学习曲线", "参数重要性"]}

# Every drawn figure: its id and the number of points of its fullest trace (0 means it drew nothing).
POINTS_PER_FIGURE = """
() => Array.from(document.querySelectorAll('.js-plotly-plot')).map(div => [
  div.id,
  Math.max(0, ...div.data.map(t => (t.x || t.z || (t.dimensions && t.dimensions[0].values) || []).length)),
])
"""


@pytest.fixture(scope="module")
def chromium() -> str:
    path = shutil.which("chromium")
    if path is None:
        pytest.skip("chromium not found; install it with `apt-get install chromium`")
    return path


@pytest.fixture(scope="module")
def full_run(tmp_path_factory: pytest.TempPathFactory, tiny_encoder: Path) -> Path:
    """The search of test_info, with an evaluation, a resource log and an export table added."""
    run_dir = make_tune_run(tmp_path_factory.mktemp("report-browser"), tiny_encoder)
    add_optional_files(run_dir)
    return run_dir


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_the_report_draws_every_figure_in_chromium(chromium: str, full_run: Path, lang: str) -> None:
    path = write_report(full_run, lang)
    errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--headless"])
        page = browser.new_page(viewport={"width": 1300, "height": 900})
        page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(path.resolve().as_uri())
        page.wait_for_function(
            "document.querySelectorAll('.js-plotly-plot').length"
            " === document.querySelectorAll('.plotly-graph-div').length",
            timeout=30_000,
        )
        figures = dict(page.evaluate(POINTS_PER_FIGURE))
        headings = page.locator("h2").all_inner_texts()
        page_lang = page.evaluate("document.documentElement.lang")
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(
            path=str(ARTIFACTS / ("report.png" if lang == "en" else "report-zh.png")), full_page=True
        )
        browser.close()

    assert errors == []
    expected = {"fig-comparison", "fig-history", "fig-importance", "fig-curves", "fig-loss", "fig-parallel"}
    expected |= {"fig-confusion", "fig-data", "fig-labels", "fig-memory", "fig-cpu", "fig-io"}
    assert set(figures) == expected
    assert all(points > 0 for points in figures.values()), figures
    assert page_lang == lang and set(HEADINGS[lang]) <= set(headings)

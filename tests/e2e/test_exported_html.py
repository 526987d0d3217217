"""The HTML page ``workbench batch`` exports for notebook 06, opened offline in headless Chromium
(opt-in: ``make e2e``).

Notebook 06 runs through :func:`workbench.batch.run_grid` with its smoke parameters of
tests/notebooks/smoke.yaml (a fresh runs folder: it trains its smoke run, ~20-60 s), then its
page is opened by ``file://`` with every request outside the batch folder blocked and recorded.
The page must load nothing from any other place (no CDN: require.js, MathJax, mermaid or the
widget manager would fail silently offline), draw every plotly figure it holds, and show the
attention explorer's static view (its info line and heatmap) where a page without a widget
manager would otherwise show a blank widget. Screenshots go to ``<runs>/e2e/``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

NOTEBOOK = "06_attention.ipynb"
ROOT = Path(__file__).resolve().parents[2]
LOAD_TIMEOUT_S = 60
# what a page that loads from a CDN names (nbconvert's default lab page holds all of these)
CDN_NAMES = ("cdnjs", "unpkg", "cdn.jsdelivr", "require.min.js", "mathjax")

# Per plotly figure on the page: the traces plotly processed and those it drew (a g.trace per
# scatter/bar in the SVG, a g.hm holding an <image> per heatmap), the heatmap images and size.
_DRAWN_FIGURES = """(root) => Array.from(root.querySelectorAll('.js-plotly-plot')).map(el => ({
  svg: el.querySelectorAll('svg.main-svg').length,
  traces: (el._fullData || []).length,
  types: (el._fullData || []).map(t => t.type),
  drawn: el.querySelectorAll('svg.main-svg g.trace, svg.main-svg g.hm').length,
  heatmaps: Array.from(el.querySelectorAll('.heatmaplayer image')).map(im => (im.getAttribute('href') || '').length),
  width: el.getBoundingClientRect().width, height: el.getBoundingClientRect().height,
}))"""


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The batch folder holding notebook 06 executed with its smoke parameters and exported."""
    from workbench.batch import run_grid
    from workbench.grid import load_grid

    cells = [c for c in load_grid(ROOT / "tests" / "notebooks" / "smoke.yaml")
             if c.notebook.name == NOTEBOOK]
    assert len(cells) == 1, f"{NOTEBOOK} is not in tests/notebooks/smoke.yaml"
    out = tmp_path_factory.mktemp("batch")
    # its own runs folder (as the JupyterLab test's): what it shows never depends on this
    # checkout's runs; WORKBENCH_E2E_RUNS points it at an existing one (its smoke run reused)
    runs = os.environ.get("WORKBENCH_E2E_RUNS") or str(tmp_path_factory.mktemp("runs"))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WORKBENCH_RUNS", runs)
        results = run_grid(cells, out, html=True)
    assert [r.status for r in results] == ["ok"], [r.error for r in results]
    assert (out / "06_attention.html").is_file(), sorted(p.name for p in out.iterdir())
    return out


@pytest.fixture
def offline_page(browser: object, exported: Path, artifacts: Path) -> Iterator[object]:
    """A page whose requests outside ``exported`` are aborted; every request it made is in
    ``page.requests`` and every blocked one in ``page.blocked``."""
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})  # type: ignore[attr-defined]
    own = exported.resolve().as_uri() + "/"
    requests: list[str] = []
    blocked: list[str] = []

    def route(r) -> None:
        url = r.request.url
        if url.startswith(own) or url.startswith(("data:", "blob:")):
            r.continue_()
        else:
            blocked.append(url)
            r.abort()

    ctx.route("**/*", route)
    pg = ctx.new_page()
    pg.on("request", lambda req: requests.append(req.url))
    pg.requests, pg.blocked = requests, blocked  # type: ignore[attr-defined]
    pg.console_errors = []  # type: ignore[attr-defined]
    pg.on("console", lambda m: pg.console_errors.append(f"{m.type}: {m.text}") if m.type == "error" else None)
    pg.on("pageerror", lambda e: pg.console_errors.append(f"pageerror: {e}"))
    try:
        yield pg
    finally:
        (artifacts / "console-exported-06.txt").write_text("\n".join(pg.console_errors) + "\n")
        ctx.close()


def test_exported_pages_name_no_cdn(exported: Path) -> None:
    pages = sorted(exported.glob("*.html"))
    assert {p.name for p in pages} == {"06_attention.html", "index.html"}
    for page in pages:
        html = page.read_text(encoding="utf-8").lower()
        found = [name for name in CDN_NAMES if name in html]
        assert not found, f"{page.name} names {found}"


def test_exported_attention_notebook_shows_the_explorer_offline(offline_page, exported: Path, artifacts: Path) -> None:
    page = offline_page
    html_path = exported / "06_attention.html"
    page.goto(html_path.resolve().as_uri(), wait_until="load", timeout=LOAD_TIMEOUT_S * 1000)

    # nothing but the batch folder was asked for (the page itself and the shared plotly.js)
    own = exported.resolve().as_uri() + "/"
    assert not page.blocked, f"the page asked for {page.blocked}"
    outside = [u for u in page.requests if not u.startswith((own, "data:", "blob:"))]
    assert not outside, f"requests outside {own}: {outside}"
    assert own + "plotly.min.js" in page.requests, page.requests

    # every figure on the page is drawn: one plotly div per Plotly.newPlot call, each with SVG
    # and as many trace groups as traces (plotly draws as the page loads: no kernel, no widget)
    n_figures = html_path.read_text(encoding="utf-8").count("Plotly.newPlot(")
    assert n_figures >= 2, f"the page holds {n_figures} figure(s); the explorer's and cell 10's are expected"
    page.wait_for_function(
        f"(n) => {{ const f = ({_DRAWN_FIGURES})(document); return f.length === n && f.every(x => x.svg > 0); }}",
        arg=n_figures, timeout=LOAD_TIMEOUT_S * 1000, polling=250)
    for k, fig in enumerate(page.locator("body").evaluate(_DRAWN_FIGURES)):
        assert fig["traces"] > 0 and fig["drawn"] == fig["traces"], f"figure {k}: {fig}"
        assert fig["width"] > 200 and fig["height"] > 150, f"figure {k}: {fig}"

    # the explorer's cell shows its static view: the utterance's line and its heatmap, drawn
    cell = page.locator(".jp-CodeCell").filter(
        has=page.locator(".jp-InputArea", has_text="AttentionExplorer(loaders)"))
    assert cell.count() == 1, f"{cell.count()} cells create the explorer"
    output = cell.locator(".jp-OutputArea")
    output.scroll_into_view_if_needed()
    text = output.inner_text()
    assert "Loading widget" not in text, text[:300]
    assert re.search(r"Ses\d\d[FM]_\S+ \(Ses\d\d[FM]\): true \w+, predicted \w+", text), \
        f"the explorer's cell does not show its utterance line: {text[:300]!r}"
    figs = output.evaluate(_DRAWN_FIGURES)
    assert len(figs) == 1, f"the explorer's cell draws {len(figs)} figures"
    fig = figs[0]
    assert "heatmap" in fig["types"] and fig["drawn"] == fig["traces"], fig
    assert fig["heatmaps"] and all(n > 100 for n in fig["heatmaps"]), f"heatmap image not drawn: {fig}"
    box = output.bounding_box()
    assert box and box["height"] > 200, f"the explorer's output is {box} (blank?)"
    output.screenshot(path=str(artifacts / "exported-06-explorer.png"))
    print(f"\n[e2e] exported {NOTEBOOK}: {len(page.requests)} request(s), all in the batch folder; "
          f"{n_figures} figures drawn; explorer {fig['traces']} traces, {box['height']:.0f} px high")

"""The notebooks in a real JupyterLab, driven by headless Chromium (opt-in: ``make e2e``).

For notebook 01 (corpus exploration) and 06 (attention explorer), on the smoke corpus:
open the notebook, Run All from the menu, fail on any cell error, then check in the page that
every plotly figure the kernel sent is drawn as SVG with all its traces, that audio players
hold the utterance they claim (decoded samples against the corpus file), and, in 06, that
the explorer's controls appear, choosing another utterance redraws the heatmap and the play
button loads that utterance's audio. Screenshots go to ``<runs>/e2e/``.
"""

from __future__ import annotations

import base64
import io
import re
import time
import wave
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

pytestmark = pytest.mark.e2e

OPEN_TIMEOUT_S = 120  # page load + kernel start
RUN_TIMEOUT_S = {"01_explore.ipynb": 300, "06_attention.ipynb": 900}  # 06 may train a smoke run
ELEMENT_TIMEOUT_S = 60
PLOTLY_MIME = "application/vnd.plotly.v1+json"

# ------------------------------------------------------------------ page helpers (JS)
_CURRENT = "(() => { const a = window.jupyterapp; return a ? a.shell.currentWidget : null; })()"

_NOTEBOOK_READY = """(name) => {
  const w = __CURRENT__;
  if (!w || !w.context || !w.context.path.endsWith(name) || !w.content || !w.content.widgets) return false;
  const k = w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;
  return !!k && k.connectionStatus === 'connected' && k.status === 'idle' && w.content.widgets.length > 0;
}""".replace("__CURRENT__", _CURRENT)

_CELL_STATES = """() => {
  const w = __CURRENT__;
  const k = w.sessionContext.session && w.sessionContext.session.kernel;
  const cells = [];
  w.content.widgets.forEach((c, i) => {
    if (c.model.type !== 'code') return;
    const err = c.model.outputs.toJSON().find(o => o.output_type === 'error');
    const prompt = (c.node.querySelector('.jp-InputPrompt') || {}).textContent || '';
    cells.push({index: i, count: c.model.executionCount,
                running: c.model.executionState === 'running' || prompt.includes('*'),
                error: err ? `${err.ename}: ${err.evalue}` : null,
                source: c.model.sharedModel.getSource().split('\\n').slice(0, 3).join(' | ')});
  });
  return {kernel: k ? k.status : 'no kernel', cells};
}""".replace("__CURRENT__", _CURRENT)

_PLOTLY_OUTPUTS = """(mime) => {
  const w = __CURRENT__;
  const out = [];
  w.content.widgets.forEach((c, i) => {
    if (c.model.type !== 'code') return;
    c.model.outputs.toJSON().forEach(o => {
      const d = o.data && o.data[mime];
      if (d) out.push({cell: i, traces: d.data.length,
                       title: ((d.layout || {}).title || {}).text || ''});
    });
  });
  return out;
}""".replace("__CURRENT__", _CURRENT)

# What plotly drew for each figure in an element: traces it processed and the traces it drew:
# scatter/bar/box draw a g.trace each in SVG, a heatmap a g.hm holding an <image>, and WebGL
# traces (scattergl) draw into the figure's gl canvases, counted when those exist with a size.
_DRAWN_FIGURES = """(root) => Array.from(root.querySelectorAll('.js-plotly-plot')).map(el => ({
  svg: el.querySelectorAll('svg.main-svg').length,
  traces: (el._fullData || []).length,
  drawn: el.querySelectorAll('svg.main-svg g.trace, svg.main-svg g.hm').length
    + (Array.from(el.querySelectorAll('.gl-container canvas')).some(c => c.width > 0 && c.height > 0)
       ? (el._fullData || []).filter(t => t.visible !== false && /gl$/.test(t.type)).length : 0),
  heatmaps: Array.from(el.querySelectorAll('.heatmaplayer image')).map(im => im.getAttribute('href') || ''),
  title: ((el.layout || {}).title || {}).text || '',
  width: el.getBoundingClientRect().width, height: el.getBoundingClientRect().height,
}))"""


def wait_for(page, what: str, js: str, arg=None, timeout_s: float = ELEMENT_TIMEOUT_S):
    """Wait until ``js`` is truthy in the page; fail naming ``what`` after ``timeout_s``."""
    from playwright.sync_api import TimeoutError as PwTimeout

    try:
        return page.wait_for_function(js, arg=arg, timeout=timeout_s * 1000, polling=250).json_value()
    except PwTimeout:
        pass  # fail outside the handler: the message is the report, not Playwright's traceback
    _timeout(page, f"waiting for {what}", timeout_s)


def _timeout(page, what: str, timeout_s: float) -> None:
    shot = page.artifacts / f"timeout-{re.sub(r'[^A-Za-z0-9]+', '-', what)[:70]}.png"
    page.screenshot(path=str(shot))
    pytest.fail(f"timed out after {timeout_s:.0f} s {what} (screenshot {shot})", pytrace=False)


def wait_visible(locator, what: str, timeout_s: float = ELEMENT_TIMEOUT_S) -> None:
    from playwright.sync_api import TimeoutError as PwTimeout

    try:
        return locator.first.wait_for(state="visible", timeout=timeout_s * 1000)
    except PwTimeout:
        pass
    _timeout(locator.page, f"waiting for {what} to appear", timeout_s)


def click(page, locator, what: str, timeout_s: float = ELEMENT_TIMEOUT_S) -> None:
    from playwright.sync_api import TimeoutError as PwTimeout

    try:
        return locator.first.click(timeout=timeout_s * 1000)
    except PwTimeout:
        pass
    _timeout(page, f"waiting to click {what}", timeout_s)


def open_notebook(page, lab, name: str) -> None:
    page.goto(lab.url(f"lab/tree/{name}?reset"), wait_until="domcontentloaded", timeout=OPEN_TIMEOUT_S * 1000)
    wait_for(page, f"notebook {name} to open with an idle kernel", _NOTEBOOK_READY, name, OPEN_TIMEOUT_S)


def run_all(page, name: str) -> float:
    """Run > Run All Cells from the menu; wait until every code cell ran or one failed.

    Fails with the cell's source and error when a cell raises, and names the pending cells
    when the run does not finish within the notebook's timeout. Returns seconds taken."""
    t0 = time.perf_counter()
    click(page, page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")), "the 'Run' menu")
    click(page, page.locator('.lm-Menu-item[data-command="runmenu:run-all"]'), "Run > Run All Cells")
    timeout = RUN_TIMEOUT_S.get(name, 300)
    state: dict = {}
    while time.perf_counter() - t0 < timeout:
        state = page.evaluate(_CELL_STATES)
        cells = state["cells"]
        errors = [c for c in cells if c["error"]]
        idle = state["kernel"] == "idle" and not any(c["running"] for c in cells)
        if idle and (errors or all(c["count"] is not None for c in cells)):
            break
        time.sleep(1)
    else:
        pending = [f"[{c['index']}] {c['source']}" for c in state.get("cells", []) if c["count"] is None]
        page.screenshot(path=str(page.artifacts / f"{Path(name).stem}-timeout.png"))
        pytest.fail(f"{name}: Run All did not finish within {timeout} s (kernel {state.get('kernel')}); "
                    f"cells not yet run:\n" + "\n".join(pending), pytrace=False)
    seconds = time.perf_counter() - t0
    page.screenshot(path=str(page.artifacts / f"{Path(name).stem}-after-run.png"))
    if errors:
        e = errors[0]
        pytest.fail(f"{name}: cell [{e['index']}] raised {e['error']}\n  source: {e['source']}", pytrace=False)
    assert all(c["count"] is not None for c in cells)
    return seconds


def check_cell_figures(page, name: str, min_figures: int) -> list[dict]:
    """Every plotly output the kernel sent is drawn in its cell: SVG, all traces, sane size."""
    sent = page.evaluate(_PLOTLY_OUTPUTS, PLOTLY_MIME)
    assert len(sent) >= min_figures, f"{name}: expected at least {min_figures} plotly outputs, kernel sent {len(sent)}"
    drawn_all = []
    for cell in sorted({s["cell"] for s in sent}):
        want = [s for s in sent if s["cell"] == cell]
        # cells off screen are skipped by the browser (content-visibility): scroll as a user would
        page.evaluate(f"(i) => {_CURRENT}.content.widgets[i].node.scrollIntoView()", cell)
        js = f"""(a) => {{
          const node = {_CURRENT}.content.widgets[a.cell].node;
          const figs = ({_DRAWN_FIGURES})(node);
          return figs.length === a.n && figs.every(f => f.svg > 0 && f.traces > 0) ? figs : false;
        }}"""
        drawn = wait_for(page, f"{name}: {len(want)} plotly figure(s) drawn in cell [{cell}]", js,
                         {"cell": cell, "n": len(want)})
        for k, (s, d) in enumerate(zip(want, drawn)):
            assert d["traces"] == s["traces"], f"{name} cell [{cell}]: kernel sent {s['traces']} traces, plotly drew {d['traces']}"
            assert d["drawn"] == s["traces"], f"{name} cell [{cell}]: {s['traces']} traces but {d['drawn']} trace groups in the SVG"
            assert d["title"] == s["title"]
            # a figure wider than the output area would need horizontal scrolling
            area = page.evaluate(f"(i) => {_CURRENT}.content.widgets[i].node.querySelector('.jp-OutputArea').getBoundingClientRect().width", cell)
            assert 200 < d["width"] <= area + 1, f"{name} cell [{cell}]: figure {d['width']:.0f} px wide in a {area:.0f} px output area"
            assert 150 < d["height"] < 1200, f"{name} cell [{cell}]: figure {d['height']:.0f} px high"
            page.locator(".jp-Notebook .jp-Cell").nth(cell).locator(".js-plotly-plot").nth(k).screenshot(
                path=str(page.artifacts / f"{Path(name).stem}-cell{cell:02d}-fig{k}.png"))
        drawn_all += drawn
    return drawn_all


def decode_audio(src: str) -> tuple[np.ndarray, int]:
    """Samples (float, peak 1) and rate of a ``data:audio/wav;base64,...`` URL as IPython writes it."""
    assert src.startswith("data:audio/wav;base64,"), f"audio src is not an inline WAV: {src[:60]!r}"
    with wave.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1]))) as w:
        rate, raw = w.getframerate(), w.readframes(w.getnframes())
        assert w.getsampwidth() == 2 and w.getnchannels() == 1
    x = np.frombuffer(raw, "<i2").astype(np.float64)
    return x / max(np.abs(x).max(), 1), rate


def assert_audio_is(src: str, utt) -> None:
    """The player's samples are the utterance's own recording (same length, correlation ~1)."""
    got, rate = decode_audio(src)
    ref, sr = sf.read(utt.audio_path, dtype="float64")
    assert rate == sr == 16000, (rate, sr)
    ref = ref[round(utt.start * sr):][: round(utt.duration * sr)] if utt.start else ref
    assert abs(len(got) - len(ref)) <= 1, f"player holds {len(got)} samples, {utt.id} has {len(ref)}"
    n = min(len(got), len(ref))
    r = np.corrcoef(got[:n], ref[:n])[0, 1]
    assert r > 0.999, f"player audio is not {utt.id}'s recording (correlation {r:.3f})"


@pytest.fixture(scope="module")
def manifest():
    from workbench.corpus import load_corpus

    return load_corpus("synthetic", corpus_size="smoke", corpus_seed=0)


# ------------------------------------------------------------------ tests
def test_server_that_does_not_start_is_reported(lab_starter, tmp_path) -> None:
    # a missing root folder makes jupyter exit at once: the error names the port and the log
    with pytest.raises(RuntimeError, match=r"JupyterLab exited with code [1-9]\d* before answering on port \d+") as e:
        lab_starter(tmp_path, tmp_path / "lab.log", timeout=60,
                    extra_args=(f"--ServerApp.root_dir={tmp_path / 'missing'}",))
    assert "missing" in str(e.value)  # the log tail says why


def test_explore_notebook(page, lab, manifest) -> None:
    name = "01_explore.ipynb"
    t0 = time.perf_counter()
    open_notebook(page, lab, name)
    t_open = time.perf_counter() - t0
    t_run = run_all(page, name)
    figs = check_cell_figures(page, name, min_figures=4)
    # the smoke run shows one example: its waveform figure is titled with the utterance id,
    # and the audio player below it must hold that utterance
    titled = [f for f in figs if re.match(r"Ses\d\d[FM]_\S+ \(", f["title"])]
    assert len(titled) == 1, [f["title"] for f in figs]
    utt_id = titled[0]["title"].split()[0]
    audio = page.locator(".jp-OutputArea-output audio")
    wait_visible(audio, f"{name}: the audio player")
    assert audio.count() == 1
    assert_audio_is(audio.first.locator("source").get_attribute("src") or "", manifest[utt_id])
    print(f"\n[e2e] {name}: opened in {t_open:.1f} s, Run All {t_run:.1f} s, {len(figs)} figures")


def test_attention_explorer(page, lab, manifest) -> None:
    name = "06_attention.ipynb"
    if not (lab.root / name).exists():
        pytest.fail(f"{name} is missing from notebooks/")
    t0 = time.perf_counter()
    open_notebook(page, lab, name)
    t_open = time.perf_counter() - t0
    t_run = run_all(page, name)
    check_cell_figures(page, name, min_figures=1)

    def dropdown(label: str):
        return page.locator(".widget-dropdown").filter(has=page.locator("label", has_text=re.compile(f"^{label}$")))

    utt_dd = dropdown("utterance")
    for label in ("run", "fold", "label", "prediction", "speaker", "utterance", "map", "head", "word"):
        wait_visible(dropdown(label), f"the explorer's {label!r} dropdown")
    play = page.locator("button", has_text="play utterance")
    wait_visible(play, "the explorer's 'play utterance' button")
    explorer = page.locator(".widget-vbox").filter(has=utt_dd).last
    explorer.scroll_into_view_if_needed()

    def heatmap_state() -> dict | None:
        figs = explorer.evaluate(_DRAWN_FIGURES)
        return figs[0] if len(figs) == 1 else None

    wait_for(page, "the explorer's heatmap", f"""() => {{
      const dd = Array.from(document.querySelectorAll('.widget-vbox')).filter(v => v.querySelector('.widget-dropdown select'));
      const figs = dd.length ? ({_DRAWN_FIGURES})(dd[dd.length - 1]) : [];
      return figs.length === 1 && figs[0].heatmaps.length > 0 && figs[0].heatmaps[0].length > 0;
    }}""")
    select = utt_dd.locator("select")
    options = select.locator("option").all_inner_texts()
    assert len(options) >= 2, f"explorer lists {len(options)} utterance(s); need two to switch"
    first_id = select.evaluate("s => s.options[s.selectedIndex].text").split()[0]
    before = heatmap_state()
    assert before and first_id in before["title"], (first_id, before and before["title"])
    explorer.screenshot(path=str(page.artifacts / "06_attention-explorer-first.png"))

    click(page, play, "the explorer's 'play utterance' button")
    audio = explorer.locator("audio source")
    wait_visible(explorer.locator("audio"), "the explorer's audio player after 'play utterance'")
    first_src = audio.first.get_attribute("src") or ""
    assert_audio_is(first_src, manifest[first_id])

    # choose another utterance: the heatmap must be redrawn for it
    other = next(o for o in options if o.split()[0] != first_id)
    other_id = other.split()[0]
    select.select_option(label=other)
    wait_for(page, f"the heatmap to show {other_id} after choosing it", f"""(id) => {{
      const dd = Array.from(document.querySelectorAll('.widget-vbox')).filter(v => v.querySelector('.widget-dropdown select'));
      const figs = ({_DRAWN_FIGURES})(dd[dd.length - 1]);
      return figs.length === 1 && figs[0].title.includes(id) && figs[0].heatmaps.length > 0;
    }}""", other_id)
    after = heatmap_state()
    assert after and after["heatmaps"][0] != before["heatmaps"][0], "heatmap image unchanged after choosing another utterance"
    info = explorer.locator(".widget-html", has_text="predicted").first.inner_text()
    assert other_id in info, f"info panel does not name {other_id}: {info[:200]!r}"
    explorer.screenshot(path=str(page.artifacts / "06_attention-explorer-second.png"))

    # the audio widget must now hold the newly selected utterance
    click(page, play, "the explorer's 'play utterance' button")
    wait_for(page, f"the audio player to hold {other_id}", """(old) => {
      const s = Array.from(document.querySelectorAll('.widget-vbox audio source'));
      return s.length > 0 && s[s.length - 1].getAttribute('src') !== old;
    }""", first_src)
    assert_audio_is(audio.last.get_attribute("src") or "", manifest[other_id])
    print(f"\n[e2e] {name}: opened in {t_open:.1f} s, Run All {t_run:.1f} s")

import json
import re
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from workbench.batch import run_grid, summary_table
from workbench.cli import main
from workbench.distributed import BackendOptions
from workbench.grid import load_grid
from workbench.testing import interrupt_when, write_notebook


@pytest.fixture
def grid(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_notebook(tmp_path / "good.ipynb", "print('x is', x)")
    write_notebook(tmp_path / "bad.ipynb", "raise RuntimeError('boom ' + str(x))")
    (tmp_path / "grid.yaml").write_text(
        "defaults: {x: 5}\n"
        "runs:\n"
        "  - notebook: good.ipynb\n"
        "    grid: {x: [2, 3]}\n"
        "  - notebook: bad.ipynb\n"
    )
    return tmp_path / "grid.yaml"


def test_grid_runs_continue_past_failures_and_skip_unchanged(grid, tmp_path, monkeypatch):
    import workbench.batch

    monkeypatch.setattr(workbench.batch, "_library_hash", lambda: "v1")
    out = tmp_path / "runs"
    results = run_grid(load_grid(grid), out, BackendOptions(jobs=2), html=True)
    assert [r.status for r in results] == ["ok", "ok", "failed"]
    assert "boom 5" in results[2].error
    executed = nbformat.read(out / "good__x=3.ipynb", as_version=4)
    printed = "".join(o.get("text", "") for c in executed.cells for o in c.get("outputs", []))
    assert "x is 3" in printed
    index = (out / "index.html").read_text()
    assert 'href="good__x=2.html"' in index and "failed" in index
    # second run: unchanged ok cells are skipped, the failed one is retried
    again = run_grid(load_grid(grid), out, BackendOptions(jobs=1), html=False)
    assert [r.status for r in again] == ["skipped", "skipped", "failed"]
    assert set(json.loads((out / "batch_state.json").read_text())) == {"good__x=2", "good__x=3"}
    # a library change invalidates earlier runs
    monkeypatch.setattr(workbench.batch, "_library_hash", lambda: "v2")
    assert [r.status for r in run_grid(load_grid(grid)[:1], out, html=False)] == ["ok"]
    table = summary_table(again)
    assert list(table.columns) == ["notebook", "status", "seconds", "error"]


def test_cli_exit_code_reflects_failures(grid, tmp_path, capsys):
    assert main(["batch", str(grid), "--out", str(tmp_path / "r"), "--no-html"]) == 1
    # issue 28: the cell count is said before anything runs
    assert "workbench batch: 3 cell(s), 3 to run, 0 unchanged" in capsys.readouterr().err


def test_plan_line_estimates_from_the_last_summary(tmp_path):
    from workbench.batch import plan_line

    assert plan_line(4, ["a", "b"], tmp_path) == f"workbench batch: 4 cell(s), 2 to run, 2 unchanged, into {tmp_path}"
    pd.DataFrame({"notebook": ["a", "b", "c"], "status": ["ok", "failed", "ok"],
                  "seconds": [120.0, 5.0, 600.0]}).to_csv(tmp_path / "summary.csv", index=False)
    line = plan_line(4, ["a", "b"], tmp_path)  # b failed last time: only a's 120 s counts
    assert line.endswith("; 1 of them ran before, 120 s each on average (summary.csv), so about 4 min one at a time")


def test_bad_parameters_fail_without_running(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_notebook(tmp_path / "good.ipynb", "print('x is', x)")
    write_notebook(tmp_path / "other.ipynb", "print(only_elsewhere)", parameters="only_elsewhere = False")
    (tmp_path / "g.yaml").write_text(
        "defaults: {x: 1, only_elsewhere: true}\n"  # defaults a notebook lacks are not passed to it
        "runs:\n"
        "  - notebook: good.ipynb\n"
        "  - notebook: other.ipynb\n"
        "  - notebook: good.ipynb\n    name: typo\n    parameters: {y: 2}\n"
        "  - notebook: good.ipynb\n    name: wrongtype\n    parameters: {x: 'one'}\n"
    )
    cells = load_grid(tmp_path / "g.yaml")
    assert cells[0].parameters == {"x": 1} and cells[0].problems == ()
    results = run_grid(cells, tmp_path / "out", html=False)
    assert cells[1].parameters == {"only_elsewhere": True}
    assert [r.status for r in results] == ["ok", "ok", "failed", "failed"]
    assert "unknown parameter 'y'" in results[2].error
    # exactly 0.0: the value run_cell gives a cell it never started, not a measured time
    assert "parameter 'x': expected int" in results[3].error and results[3].seconds == 0.0
    assert not (tmp_path / "out" / "typo.ipynb").exists()


def test_failed_notebook_never_sits_under_its_final_name(grid, tmp_path):
    out = tmp_path / "runs"
    results = run_grid(load_grid(grid), out, html=False)
    assert results[2].output.name == "bad.FAILED.ipynb" and results[2].output.is_file()
    assert not (out / "bad.ipynb").exists()
    assert not list(out.glob(".*.running.ipynb"))


def test_summary_reads_key_metrics_of_matching_runs():
    from workbench.batch import CellResult

    # the notebooks' parameter names select on the results columns that keep their old names:
    # corpus_size -> corpus_preset, recipe -> train_preset
    cells = [
        CellResult("train__model=a", "nb", Path("x"), "ok", 1.0, "", {"model": "a", "corpus_size": "demo"}),
        CellResult("train__model=b", "nb", Path("y"), "ok", 2.0, "", {"model": "b", "protocol": "p2"}),
        CellResult("explore", "nb", Path("z"), "failed", 3.0, "boom", {"corpus_size": "demo"}),
        CellResult("train__model=a_paper", "nb", Path("w"), "ok", 1.0, "", {"model": "a", "recipe": "paper"}),
    ]
    table = pd.DataFrame({
        "model": ["a", "a", "a", "b", "b"],
        "corpus_preset": ["demo", "demo", "smoke", "demo", "demo"],
        "train_preset": ["demo", "paper", "paper", "demo", "demo"],
        "protocol": ["p1", "p2", "p1", "p1", "p2"],
        "wa": [0.5, 0.7, 0.9, 0.1, 0.3], "ua": [0.4, 0.6, 0.9, 0.2, 0.35], "macro_f1": [0.3, 0.5, 0.9, 0.1, 0.25],
    })
    s = summary_table(cells, table)
    assert s["runs"].tolist()[:2] == [2, 1] and pd.isna(s["runs"].iloc[2]) and s["runs"].iloc[3] == 2
    # demo rows of model a only; means of floats, so compared with a tolerance
    assert s.loc[0, ["wa", "ua", "macro_f1"]].tolist() == pytest.approx([0.6, 0.5, 0.4])
    assert s.loc[1, "ua"] == pytest.approx(0.35) and s.loc[2, "error"] == "boom"
    assert s.loc[3, ["wa", "ua", "macro_f1"]].tolist() == pytest.approx([0.8, 0.75, 0.7])  # a's paper rows


# --------------------------------------------------------------------------- hardening
def _grid_file(tmp_path, text):
    path = tmp_path / "g.yaml"
    path.write_text(text)
    return path


def test_run_cell_refuses_a_cell_whose_files_leave_out(tmp_path):
    from workbench.batch import BatchError, GridCell, run_cell

    write_notebook(tmp_path / "good.ipynb", "print(x)")
    victim = tmp_path / "victim.FAILED.ipynb"
    victim.write_text("precious")
    (tmp_path / "out").mkdir()
    cell = GridCell(tmp_path / "good.ipynb", {}, "../victim")
    with pytest.raises(BatchError, match="victim"):
        run_cell(cell, tmp_path / "out")
    with pytest.raises(BatchError, match="victim"):  # cells need not come from load_grid
        run_grid([cell], tmp_path / "out", html=False)
    assert victim.read_text() == "precious"


def _fake_execute(monkeypatch, interrupt_at=None, gate=None):
    """Replace papermill's executor: a cell "runs" by copying its notebook to the output path
    (as papermill writes it while executing); call number ``interrupt_at`` is Ctrl-C'd midway;
    with ``gate``, every call waits for it first."""
    import papermill

    calls = []

    def execute(input_path, output_path, **kw):
        calls.append(output_path)
        Path(output_path).write_text(Path(input_path).read_text())
        if gate is not None:
            gate(output_path)
        if len(calls) == interrupt_at:
            raise KeyboardInterrupt
        return None

    monkeypatch.setattr(papermill, "execute_notebook", execute)
    return calls


def test_ctrl_c_sets_running_copies_aside_and_keeps_what_finished(grid, tmp_path, monkeypatch):
    out = tmp_path / "runs"
    _fake_execute(monkeypatch, interrupt_at=2)
    with pytest.raises(KeyboardInterrupt) as exc:
        run_grid(load_grid(grid), out, html=True)
    assert not list(out.glob(".*.running.ipynb"))
    assert (out / "good__x=3.INTERRUPTED.ipynb").is_file() and not (out / "good__x=3.ipynb").exists()
    assert set(json.loads((out / "batch_state.json").read_text())) == {"good__x=2"}
    results = exc.value.results
    assert [(r.name, r.status) for r in results] == [
        ("good__x=2", "ok"), ("good__x=3", "interrupted"), ("bad", "interrupted")]
    assert results[1].error.startswith("interrupted while running") and results[2].error.startswith("not run")
    assert 'href="good__x=2.html"' in (out / "index.html").read_text()
    # the next run of the interrupted cell removes its .INTERRUPTED copy
    _fake_execute(monkeypatch)
    assert [r.status for r in run_grid(load_grid(grid)[:2], out, html=False)] == ["skipped", "ok"]
    assert not (out / "good__x=3.INTERRUPTED.ipynb").exists() and (out / "good__x=3.ipynb").is_file()


def test_ctrl_c_stops_worker_processes_and_sets_their_copies_aside(tmp_path, monkeypatch):
    import time

    monkeypatch.chdir(tmp_path)
    write_notebook(tmp_path / "slow.ipynb", "import time\ntime.sleep(x)")
    (tmp_path / "g.yaml").write_text("runs:\n  - notebook: slow.ipynb\n    grid: {x: [30, 31, 32]}\n")
    out = tmp_path / "runs"
    interrupt_when(lambda: len(list(out.glob(".*.running.ipynb"))) >= 2, timeout=120)  # both workers execute
    t0 = time.monotonic()
    with pytest.raises(KeyboardInterrupt) as exc:
        run_grid(load_grid(tmp_path / "g.yaml"), out, BackendOptions(jobs=2), html=False)
    assert time.monotonic() - t0 < 30  # the workers were stopped, not waited for
    assert not list(out.glob(".*.running.ipynb"))
    assert sorted(p.name for p in out.glob("*.INTERRUPTED.ipynb")) == ["slow__x=30.INTERRUPTED.ipynb",
                                                                        "slow__x=31.INTERRUPTED.ipynb"]
    assert [r.status for r in exc.value.results] == ["interrupted"] * 3


def test_two_batches_into_one_out_keep_each_others_records(tmp_path, monkeypatch):
    import threading

    monkeypatch.chdir(tmp_path)
    write_notebook(tmp_path / "good.ipynb", "print(x)")
    cells = load_grid(_grid_file(tmp_path, "runs:\n  - notebook: good.ipynb\n    grid: {x: [1, 2]}\n"))
    both_running = threading.Barrier(2, timeout=60)  # each batch has read the state before either writes
    _fake_execute(monkeypatch, gate=lambda _: both_running.wait())
    out, errors = tmp_path / "runs", []

    def batch(cell):
        try:
            assert [r.status for r in run_grid([cell], out, html=False)] == ["ok"]
        except BaseException as e:  # noqa: BLE001 - reported by the main thread
            errors.append(e)

    threads = [threading.Thread(target=batch, args=(c,)) for c in cells]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors
    assert set(json.loads((out / "batch_state.json").read_text())) == {"good__x=1", "good__x=2"}


def test_stale_running_copies_of_a_killed_batch_are_set_aside_at_the_next_start(grid, tmp_path, monkeypatch):
    out = tmp_path / "runs"
    out.mkdir()
    (out / ".other.running.ipynb").write_text("{}")  # the naming before batch ids
    (out / ".bad.0123abcd.running.ipynb").write_text("{}")
    _fake_execute(monkeypatch)
    run_grid(load_grid(grid)[:1], out, html=False)
    assert not list(out.glob(".*.running.ipynb"))
    assert (out / "other.INTERRUPTED.ipynb").is_file() and (out / "bad.INTERRUPTED.ipynb").is_file()


def test_a_live_batchs_running_copy_is_not_touched_by_another(tmp_path, monkeypatch):
    import threading

    monkeypatch.chdir(tmp_path)
    write_notebook(tmp_path / "good.ipynb", "print(x)")
    cells = load_grid(_grid_file(tmp_path, "runs:\n  - notebook: good.ipynb\n    grid: {x: [1, 2]}\n"))
    out = tmp_path / "runs"
    started, release = threading.Event(), threading.Event()

    def hold_first(path):
        if "x=1" in str(path):
            started.set()
            assert release.wait(60)

    _fake_execute(monkeypatch, gate=hold_first)
    first = threading.Thread(target=run_grid, args=([cells[0]], out), kwargs={"html": False})
    first.start()
    try:
        assert started.wait(60)
        live = list(out.glob(".*.running.ipynb"))
        assert len(live) == 1
        run_grid([cells[1]], out, html=False)  # starts while the first batch executes
        assert live[0].is_file() and not list(out.glob("*.INTERRUPTED.ipynb"))
    finally:
        release.set()
        first.join(60)
    assert (out / "good__x=1.ipynb").is_file() and not list(out.glob(".*.running.ipynb"))


def test_summary_rows_of_variant_cells_count_only_their_variant():
    """Before: the cells of Pepino's small and large models showed the same pooled numbers."""
    from pathlib import Path

    from workbench.batch import CellResult

    table = pd.DataFrame({"model": ["m", "m"], "variant": ["small", "large"], "protocol": ["p", "p"],
                          "wa": [0.5, 0.7], "ua": [0.4, 0.8], "macro_f1": [0.3, 0.9]})
    cells = [CellResult(f"c_{v}", "nb", Path("x"), "ok", 1.0, parameters={"model": "m", "variant": v, "protocol": "p"})
             for v in ("small", "large")]
    s = summary_table(cells, table)
    assert s["runs"].tolist() == [1, 1] and s["ua"].tolist() == [0.4, 0.8]


# ------------------------------------------------------------------ one shared plotly.js per run folder
PLOTLY_MIME = "application/vnd.plotly.v1+json"
FIGURE_CELL = (
    "import plotly.graph_objects as go\n"
    "from workbench.viz import init_notebook\n"
    "init_notebook()\n"
    "go.Figure(go.Bar(y=[1, x, 3], name='bars'))"
)


def _library_fragments() -> list[str]:
    """Pieces of the installed plotly.js that any inline copy would contain (its start, middle, end)."""
    from plotly.offline import get_plotlyjs

    js = get_plotlyjs()
    mid = len(js) // 2
    return [js[:300], js[mid:mid + 300], js[-300:]]


def network_loads(html: str) -> list[str]:
    """What a page would fetch from the network: script or stylesheet URLs, module imports and
    CSS url()s with a scheme (links a reader may click and CSS comments load nothing)."""
    code = re.sub(r"/\*.*?\*/", "", html, flags=re.S)
    return (re.findall(r"<script[^>]*\bsrc=\"(https?:[^\"]*)\"", code)
            + re.findall(r"<link[^>]*\bhref=\"(https?:[^\"]*)\"", code)
            + re.findall(r"\bimport\b[^;\n]*[\"'](https?:[^\"']*)", code)
            + re.findall(r"url\(\s*[\"']?(https?:[^)\"']*)", code))


def test_network_loads_finds_cdn_scripts_and_ignores_links_and_comments():
    page = ('<script src="https://cdnjs.cloudflare.com/require.js"></script><a href="https://example.org">x</a>'
            '<style>/* https://github.com/a */ b {background: url("https://x/y.png")}</style>'
            '<script type="module">import mermaid from "https://cdn/mermaid.mjs";</script>')
    assert network_loads(page) == ["https://cdnjs.cloudflare.com/require.js", "https://cdn/mermaid.mjs", "https://x/y.png"]


def test_batch_html_pages_load_one_shared_plotly_js_and_embed_no_copy(tmp_path, monkeypatch):
    from plotly.offline import get_plotlyjs

    monkeypatch.chdir(tmp_path)
    write_notebook(tmp_path / "fig.ipynb", FIGURE_CELL)
    write_notebook(tmp_path / "text.ipynb", "print('no figure here', x)")
    (tmp_path / "grid.yaml").write_text(
        "runs:\n  - notebook: fig.ipynb\n    grid: {x: [2, 7]}\n  - notebook: text.ipynb\n    parameters: {x: 1}\n")
    out = tmp_path / "runs"
    results = run_grid(load_grid(tmp_path / "grid.yaml"), out, html=True)
    assert [r.status for r in results] == ["ok", "ok", "ok"], [r.error for r in results]

    # one copy of the library in the folder, the installed package's, beside index.html
    scripts = sorted(p.name for p in out.rglob("*.js"))
    assert scripts == ["plotly.min.js"]
    assert (out / "plotly.min.js").read_text(encoding="utf-8") == get_plotlyjs()
    assert (out / "index.html").is_file()

    fragments = _library_fragments()
    pages = sorted(out.glob("*.html"))
    assert [p.name for p in pages] == ["fig__x=2.html", "fig__x=7.html", "index.html", "text.html"]
    for page in pages:
        html = page.read_text(encoding="utf-8")
        assert len(html.encode()) < 1_000_000, f"{page.name}: {len(html.encode())} bytes"
        assert not any(f in html for f in fragments), f"{page.name} holds plotly.js inline"
        if page.name == "index.html":
            continue
        # the shared copy is loaded once, by a relative src, and nothing else is loaded: no CDN
        # (require.js, MathJax, mermaid, the widget manager would fail silently offline)
        srcs = re.findall(r'<script[^>]*\bsrc="([^"]*)"', html)
        assert srcs == ["plotly.min.js"], srcs
        assert not network_loads(html), network_loads(html)
        named = [n for n in ("cdnjs", "unpkg", "cdn.jsdelivr", "require.min.js", "mathjax") if n in html.lower()]
        assert not named, f"{page.name} names {named}"

    # the figure page draws the figure: a div and its Plotly.newPlot call with the cell's data
    fig_html = (out / "fig__x=7.html").read_text(encoding="utf-8")
    assert fig_html.count("Plotly.newPlot(") == 1
    assert re.search(r'"y":\[1,7,3\]', fig_html) and 'class="plotly-graph-div"' in fig_html
    assert "Plotly.newPlot(" not in (out / "text.html").read_text(encoding="utf-8")

    # the executed notebook: only the mimetype JupyterLab draws, no HTML copy, no library
    nb = nbformat.read(out / "fig__x=7.ipynb", as_version=4)
    outputs = [o for c in nb.cells for o in c.get("outputs", []) if o.get("data")]
    figures = [o for o in outputs if PLOTLY_MIME in o["data"]]
    assert len(figures) == 1 and figures[0]["data"][PLOTLY_MIME]["data"][0]["y"] == [1, 7, 3]
    assert set(figures[0]["data"]) == {PLOTLY_MIME}
    raw = (out / "fig__x=7.ipynb").read_text(encoding="utf-8")
    assert len(raw.encode()) < 200_000 and not any(f in raw for f in fragments)


def test_plotly_js_is_rewritten_only_when_it_differs(tmp_path):
    from workbench.batch import PLOTLY_JS, write_plotly_js

    dest = write_plotly_js(tmp_path)
    assert dest == tmp_path / PLOTLY_JS
    mtime = dest.stat().st_mtime_ns
    assert write_plotly_js(tmp_path).stat().st_mtime_ns == mtime  # same content: left as it is
    dest.write_text("stale", encoding="utf-8")
    write_plotly_js(tmp_path)
    assert dest.read_text(encoding="utf-8").startswith("/**") and dest.stat().st_size > 1_000_000


def test_html_export_drops_inline_plotly_js_and_draws_mimetype_only_figures(tmp_path):
    """Notebooks shown with plotly's ``notebook`` renderer (the library displayed inline) or with
    no init_notebook (the mimetype alone) still export to pages with every figure and no copy."""
    import plotly.graph_objects as go
    import plotly.io as pio

    from workbench.batch import CellResult, export_html

    fig = go.Figure(go.Scatter(x=[0, 1, 2], y=[5, 3, 8], name="line")).to_dict()
    from plotly.offline import get_plotlyjs

    # what the notebook renderer displays once per notebook, then each figure with a copy as well
    js_output = nbformat.v4.new_output("display_data", data={"text/html": f"<script>{get_plotlyjs()}</script>"})
    notebook_renderer = nbformat.v4.new_output("display_data", data={
        PLOTLY_MIME: fig, "text/html": pio.to_html(fig, include_plotlyjs=True, full_html=False)})
    mimetype_only = nbformat.v4.new_output("display_data", data={PLOTLY_MIME: fig})
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("show()", outputs=[js_output, notebook_renderer, mimetype_only])]
    path = tmp_path / "legacy.ipynb"
    nbformat.write(nb, path)
    assert path.stat().st_size > 6_000_000  # two copies of the library went in

    export_html([CellResult("legacy", "legacy.ipynb", path, "ok", 1.0)], tmp_path)
    html = (tmp_path / "legacy.html").read_text(encoding="utf-8")
    assert len(html.encode()) < 1_000_000 and not any(f in html for f in _library_fragments())
    assert html.count("Plotly.newPlot(") == 2 and html.count('"y":[5,3,8]') == 2
    assert nbformat.read(path, as_version=4) == nb  # the notebook itself is not rewritten


def test_batch_kernels_print_no_log_notices(tmp_path, capfd):
    """ipykernel logs "Kernel is running over TCP without encryption" once per kernel; a batch
    run (that did not ask for the kernel's log) shows it nowhere. The cell's output stays."""
    from workbench.batch import GridCell, run_cell

    write_notebook(tmp_path / "good.ipynb", "import sys\nprint('x is', x)\nprint('to stderr', file=sys.stderr)")
    cell = GridCell(tmp_path / "good.ipynb", {"x": 3}, "good")
    (tmp_path / "out").mkdir()
    capfd.readouterr()
    result = run_cell(cell, tmp_path / "out")
    captured = capfd.readouterr()
    assert result.status == "ok", result.error
    assert "without encryption" not in captured.err + captured.out
    outputs = "".join(o.get("text", "") for c in nbformat.read(result.output, as_version=4).cells for o in c.get("outputs", []))
    assert "x is 3" in outputs and "to stderr" in outputs


def test_sigterm_is_handled_like_ctrl_c(tmp_path, monkeypatch, capsys):
    """issue 28: a scheduler's SIGTERM left a .running.ipynb and no summary.csv."""
    import signal

    from workbench.testing import interrupt_when

    monkeypatch.chdir(tmp_path)
    write_notebook(tmp_path / "slow.ipynb", "import time\ntime.sleep(x)")
    (tmp_path / "g.yaml").write_text("runs:\n  - notebook: slow.ipynb\n    grid: {x: [60, 61]}\n")
    out = tmp_path / "runs"
    interrupt_when(lambda: len(list(out.glob(".*.running.ipynb"))) >= 1, timeout=120, signum=signal.SIGTERM)
    assert main(["batch", "g.yaml", "--out", str(out), "--no-html"]) == 130
    assert not list(out.glob(".*.running.ipynb"))
    assert (out / "slow__x=60.INTERRUPTED.ipynb").is_file()
    summary = pd.read_csv(out / "summary.csv")
    assert summary["status"].tolist() == ["interrupted", "interrupted"]
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # restored after the batch


def test_a_concurrent_batchs_cells_appear_in_the_index_and_summary(tmp_path, monkeypatch):
    """issue 28: with two batches into one --out, index.html and summary.csv showed only the
    batch that finished last."""
    import threading

    from workbench.batch import write_summary

    monkeypatch.chdir(tmp_path)
    write_notebook(tmp_path / "good.ipynb", "print(x)")
    first, second = load_grid(_grid_file(tmp_path, "runs:\n  - notebook: good.ipynb\n    grid: {x: [1, 2]}\n"))
    first_done = threading.Event()
    # the second batch starts first and is held until the first has finished
    _fake_execute(monkeypatch, gate=lambda path: first_done.wait(60) if "x=2" in str(path) else None)
    out, got = tmp_path / "runs", {}
    waiting = threading.Thread(target=lambda: got.update(second=run_grid([second], out, html=True)))
    waiting.start()
    while not list(out.glob(".*.running.ipynb")):  # the second batch is executing
        threading.Event().wait(0.05)
    got["first"] = run_grid([first], out, html=True)
    first_done.set()
    waiting.join(60)
    mine = got["second"]
    assert [r.name for r in mine] == ["good__x=2"] and [r.name for r in mine.others] == ["good__x=1"]
    index = (out / "index.html").read_text()
    assert 'href="good__x=1.html"' in index and 'href="good__x=2.html"' in index
    assert sorted(write_summary(mine, out)["notebook"]) == ["good__x=1", "good__x=2"]
    assert sorted(pd.read_csv(out / "summary.csv")["notebook"]) == ["good__x=1", "good__x=2"]



def test_interrupt_when_refuses_a_process_that_ignores_the_signal(monkeypatch):
    # Started in the background by a shell without job control, pytest ignores SIGINT: the
    # Ctrl-C tests then waited out their 600 s tasks. The helper now says so at once.
    import signal

    monkeypatch.setattr(signal, "getsignal", lambda signum: signal.SIG_IGN)
    with pytest.raises(RuntimeError, match="ignores SIGINT"):
        interrupt_when(lambda: True, timeout=1)

"""init_notebook: figures go out as plotly's JSON mimetype alone, with no copy of plotly.js in
any output (the HTML exports draw them from it: tests/test_batch.py)."""

from __future__ import annotations

import plotly.graph_objects as go
import plotly.io as pio
import pytest
from plotly.offline import get_plotlyjs

from workbench.viz import init_notebook

PLOTLY_MIME = "application/vnd.plotly.v1+json"


class Recorder:
    """Stands in for IPython.display in plotly's renderer modules: keeps what would be displayed."""

    def __init__(self) -> None:
        self.shown: list[dict | str] = []

    def display(self, obj, raw: bool = False) -> None:
        self.shown.append(obj)

    def display_html(self, obj, raw: bool = False) -> None:
        self.shown.append({"text/html": obj})


@pytest.fixture
def displayed(monkeypatch):
    import plotly.io._base_renderers as base
    import plotly.io._renderers as rend

    rec = Recorder()
    monkeypatch.setattr(base, "ipython_display", rec)
    monkeypatch.setattr(rend, "ipython_display", rec)
    monkeypatch.setattr(pio.renderers, "default", pio.renderers.default)  # restored after the test
    return rec


def _show_two_figures() -> None:
    pio.show(go.Figure(go.Bar(y=[4, 5, 6])))
    pio.show(go.Figure(go.Scatter(x=[0, 1], y=[2, 3])))


def _texts(shown: list) -> list[str]:
    return [v for bundle in shown for v in bundle.values() if isinstance(v, str)]


def test_init_notebook_outputs_carry_no_plotly_js(displayed):
    js = get_plotlyjs()
    init_notebook()
    _show_two_figures()
    assert len(displayed.shown) == 2  # one output per figure, nothing displayed at activation
    for bundle, y in zip(displayed.shown, ([4, 5, 6], [2, 3])):
        assert set(bundle) == {PLOTLY_MIME}
        assert bundle[PLOTLY_MIME]["data"][0]["y"] == y
        assert js[:300] not in str(bundle) and len(str(bundle)) < 100_000


def test_plotlys_notebook_renderer_did_embed_the_library(displayed):
    """What init_notebook replaced: the ``notebook`` renderer displays all of plotly.js once per
    notebook (the 4.7 MB each executed notebook and HTML export carried)."""
    js = get_plotlyjs()
    pio.renderers.default = "plotly_mimetype+notebook"
    _show_two_figures()
    assert sum(js[:300] in t for t in _texts(displayed.shown)) == 1


def test_init_notebook_sets_the_mimetype_renderer_whatever_was_default():
    before = pio.renderers.default
    try:
        pio.renderers.default = "plotly_mimetype+notebook"
        init_notebook()
        assert pio.renderers.default == "plotly_mimetype"
    finally:
        pio.renderers.default = before

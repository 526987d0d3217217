"""Plotly figures for notebooks: corpus exploration, folds and leakage, results, attention.

Each submodule returns figures rather than showing them, so notebooks choose how to display
them and tests can inspect their traces.
"""


def init_notebook() -> None:
    """Render plotly figures for both JupyterLab and exported HTML, offline.

    The mimetype output is what JupyterLab draws; the ``notebook`` renderer adds an HTML copy
    with plotly.js embedded once per notebook (no CDN: machines here have no internet), so the
    HTML exports of batch runs show the figures too.
    """
    import plotly.io as pio

    pio.renderers.default = "plotly_mimetype+notebook"

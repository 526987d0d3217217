"""Plotly figures for notebooks: corpus exploration, folds and leakage, results, attention.

Each submodule returns figures rather than showing them, so notebooks choose how to display
them and tests can inspect their traces.
"""

#: The renderer :func:`init_notebook` makes the default.
NOTEBOOK_RENDERER = "plotly_mimetype"


def init_notebook() -> None:
    """Output plotly figures as plotly's JSON mimetype only: no copy of plotly.js in a notebook.

    JupyterLab draws the mimetype with the plotly extension that ships with plotly. An HTML
    export cannot draw it, so :func:`workbench.batch.export_html` turns each such output into a
    figure div with its ``Plotly.newPlot`` call, and the pages load the one plotly.js written
    beside them: offline, and the 4.7 MB library once per run folder. (Plotly's ``notebook``
    renderer, used before, displayed the whole library in every notebook and so in every HTML
    export, and each figure a second time as HTML.)
    """
    import plotly.io as pio

    pio.renderers.default = NOTEBOOK_RENDERER

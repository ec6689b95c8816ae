"""Escaping is one rule: text that is not the workbench's own becomes HTML only through
:func:`escape`.

Test names, messages and tracebacks, log bodies and attributes, file paths, project and
agent names, labels, prompts, alert titles, error messages, what a person typed — anything
from ingested data, an agent, an API client or a form — is data, never markup. Every
HTML sink of the views takes it through :func:`escape`, and only through it:

- HTML panes (``pn.pane.HTML``, :class:`~.common.LiveHTML`) and the HTML tables
  (:func:`~.common.html_table`, :class:`~.paged_table.PagedTable`, whose page the
  browser sets as ``innerHTML``) and the HTML bar charts (:mod:`.stacked_bars`, the same
  way), ``title="…"`` tooltips included (quotes are escaped);
- Markdown panes, ``pn.pane.Alert`` and widget descriptions (Panel renders those as
  Markdown into a tooltip): markdown-it passes raw HTML through, so data goes in escaped
  and never inside a code span (a span shows escapes as they are, and a backtick in the
  data would end it) — a view that shows data in ``<code>`` builds an HTML pane instead;
- notifications (Notyf sets its message as ``innerHTML``): :mod:`.notify`;
- Tabulator cells with the ``html`` formatter, and a table's placeholder.

Sinks that need nothing: Tabulator's default ``plaintext`` cells (no cell tooltips: those
are HTML), Bokeh hover tooltips of ``@field`` values (Bokeh escapes them unless ``{safe}``,
which no view uses), axis, legend and glyph text (drawn on a canvas), widget labels and
options (set as text).
"""

from __future__ import annotations

import html
import math

import pandas as pd


def escape(value: object) -> str:
    """``value`` as HTML text, for an element's content or a quoted attribute.

    Parameters
    ----------
    value
        Anything; ``str(value)`` is what is shown. Missing values (None, NaN, ``pd.NA``,
        ``pd.NaT``) are shown as nothing.

    Returns
    -------
    str
        The text with ``& < > " '`` as character references: no tag, attribute or
        entity of the data survives, and a browser (or Markdown) shows it as it was.
    """
    if value is None or value is pd.NA or value is pd.NaT or (
            isinstance(value, float) and math.isnan(value)):
        return ""
    return html.escape(str(value), quote=True)

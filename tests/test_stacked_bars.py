"""The HTML stacked bars (Agents' tokens, Tests' runs): what they draw, what they escape,
which clicks they act on, and that the same data again sends nothing."""

from __future__ import annotations

import pandas as pd
import pytest

from workbench.views.stacked_bars import StackedBars, nice_ticks, short_number

STACKS = {"input": "#3b7dd8", "output": "#2e9e5b"}


def _bars(**kw) -> tuple[StackedBars, list[str]]:
    opened: list[str] = []
    bars = StackedBars("agent", STACKS, kw.pop("title", "Tokens"), kw.pop("empty", "none yet"),
                       260, on_tap=opened.append, **kw)
    return bars, opened


def _frame(**cols) -> pd.DataFrame:
    return pd.DataFrame({"agent": ["claude-code", "codex"], "input": [600.0, 100.0],
                         "output": [400.0, None], **cols})


def test_each_bar_is_as_tall_as_its_values_against_the_axis_top():
    bars, _ = _bars()
    bars.send(_frame())
    html = bars.html
    assert bars.categories == ["claude-code", "codex"]
    # The tallest bar (1,000) reaches the top tick (1,000): 600 is 60 % of the plot.
    assert "height:60.000%;background:#3b7dd8" in html
    assert "height:40.000%;background:#2e9e5b" in html
    assert "height:10.000%;background:#3b7dd8" in html
    assert html.count('class="sb-s"') == 3  # a missing value draws no segment
    assert ">1k</span>" in html and ">0</span>" in html  # the axis reads 0 … 1k


def test_text_from_the_data_is_escaped_everywhere_it_is_shown():
    bars, _ = _bars(title="<b>t</b>", labels={"input": "<img src=x onerror=alert(1)>"},
                    extra=("note",))
    frame = _frame(note=["x", "y"])
    frame.loc[0, "agent"] = '"><script>alert(1)</script>'
    bars.send(frame)
    html = bars.html
    assert "<script>" not in html and "<img" not in html and "<b>t</b>" not in html
    assert "&lt;script&gt;" in html and "&lt;img src=x" in html and "&lt;b&gt;t" in html
    assert 'data-open="&quot;&gt;&lt;script&gt;' in html  # an attribute cannot be closed


def test_a_click_opens_only_a_bar_that_is_drawn():
    bars, opened = _bars()
    bars.send(_frame())
    for msg in ({"open": "codex"}, {"open": "not-drawn"}, {"open": 3}, "codex", None, []):
        bars._bars._handle_msg(msg)
    assert opened == ["codex"]
    bars.send(_frame().iloc[:1])
    bars._bars._handle_msg({"open": "codex"})  # no longer on the chart
    assert opened == ["codex"]


def test_bars_that_open_nothing_are_not_offered_as_clickable():
    bars = StackedBars("agent", STACKS, "Tokens", "", 200)
    bars.send(_frame())
    assert "data-open" not in bars.html and "tabindex" not in bars.html


def test_the_same_frame_again_sends_nothing_and_an_empty_one_says_why():
    bars, _ = _bars()
    sent: list[str] = []
    bars._bars.param.watch(lambda e: sent.append(e.new), "html")
    bars.send(_frame())
    bars.send(_frame())
    assert len(sent) == 1
    bars.send(_frame().iloc[:0])
    assert bars._empty.visible and not bars._bars.visible and bars.categories == []
    bars.send(_frame())
    assert bars._bars.visible and not bars._empty.visible and len(sent) == 3


@pytest.mark.parametrize(("top", "ticks"), [
    (1234, [0, 500, 1000, 1500]), (7, [0, 2, 4, 6, 8]), (1.0, [0, 0.25, 0.5, 0.75, 1.0]),
    (0, [0.0, 1.0]), (float("nan"), [0.0, 1.0])])
def test_axis_ticks_are_round_and_reach_the_top(top, ticks):
    assert nice_ticks(top) == pytest.approx(ticks)


def test_counts_are_drawn_against_whole_ticks():
    assert nice_ticks(1, whole=True) == [0, 1]
    assert nice_ticks(3, whole=True) == [0, 1, 2, 3]
    assert nice_ticks(1234, whole=True) == [0, 500, 1000, 1500]
    assert nice_ticks(10, whole=True) == [0, 5, 10]  # (not 2.5, 5, 7.5)
    assert nice_ticks(100, whole=True) == [0, 25, 50, 75, 100]  # (2.5 tens are whole)
    assert nice_ticks(0.3, whole=True) == [0, 1]
    bars = StackedBars("run", {"failed": "#d64545"}, "Runs", "", 300)
    bars.send(pd.DataFrame({"run": ["r1"], "failed": [1]}))
    assert ">0.25</span>" not in bars.html and ">1</span>" in bars.html


def test_axis_labels_are_short():
    assert [short_number(x) for x in (0, 950, 1500, 2_000_000, 2.5, 3e9)] == [
        "0", "950", "1.5k", "2M", "2.5", "3B"]

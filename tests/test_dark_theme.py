"""Buttons follow the theme (issue 21, item 13): Bootstrap's "light" buttons — the tests and
agents dashboards' window selector in the sidebar, the coverage map's breadcrumb, the
Select & run tab's secondary button — and the tables' page buttons were near-white in the
dark theme. Measured in
Chromium on the served demo: their computed background is dark and their text light with
``?theme=dark``, and they stay light with the default theme; other buttons keep their
colours."""

from __future__ import annotations

import re

import pytest

#: Every button of the page (tables' page buttons too), across the shadow roots Panel draws
#: widgets in: its text,
#: classes, computed background and text colour, and whether it is disabled.
BUTTONS_JS = """() => {
  const out = [];
  const walk = (root) => root.querySelectorAll('*').forEach(el => {
    if (el.shadowRoot) walk(el.shadowRoot);
    const pager = el.tagName === 'BUTTON' && el.closest('.obs-pg');  // an HTML table's
    if (el.classList && (el.classList.contains('bk-btn') || pager ||
                         el.classList.contains('tabulator-page')) && el.offsetParent !== null) {
      const cs = getComputedStyle(el);
      out.push({text: pager ? el.getAttribute('aria-label') : el.textContent.trim(),
                classes: pager ? ['obs-pg-button'] : [...el.classList],
                background: cs.backgroundColor, color: cs.color, disabled: el.disabled});
    }
  });
  walk(document);
  return out;
}"""
#: The page's own background in each theme (a translucent button is seen over it).
PAGE = {"dark": (33, 37, 41), "default": (255, 255, 255)}


def luminance(css: str, theme: str) -> float:
    """Relative luminance of a CSS ``rgb()``/``rgba()`` colour as seen over the page."""
    r, g, b, *a = (float(x) for x in re.findall(r"[\d.]+", css))
    alpha = a[0] if a else 1.0
    seen = [alpha * c + (1 - alpha) * p for c, p in zip((r, g, b), PAGE[theme], strict=True)]

    def channel(c: float) -> float:
        v = c / 255
        return v / 12.92 if v <= 0.04045 else ((v + 0.055) / 1.055) ** 2.4
    return 0.2126 * channel(seen[0]) + 0.7152 * channel(seen[1]) + 0.0722 * channel(seen[2])


def buttons(page, url: str, tab: str | None = None) -> list[dict]:
    page.goto(url)
    page.locator(".bk-btn").first.wait_for()
    if tab:
        page.locator(".bk-tab", has_text=tab).click()
    page.wait_for_timeout(1500)
    return page.evaluate(BUTTONS_JS)


@pytest.mark.parametrize("theme", ["dark", "default"])
def test_light_buttons_follow_the_theme(server, chromium, output_dir, theme):
    from playwright.sync_api import sync_playwright

    errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium,
                                    args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        seen: dict[str, list[dict]] = {}
        for name, path, tab in (("tests", "/tests", None), ("agents", "/agents", None),
                                ("map", "/projects", "Coverage map"),
                                ("select", "/projects", "Select & run")):
            seen[name] = buttons(page, f"{server.url}{path}?theme={theme}", tab)
            page.screenshot(path=str(output_dir / f"{name}-{theme}.png"))
        browser.close()
    assert errors == []
    light = {name: [b for b in found if "bk-btn-light" in b["classes"] or (
        "tabulator-page" in b["classes"] and "active" not in b["classes"])
        or "obs-pg-button" in b["classes"]]
        for name, found in seen.items()}
    # The ones the issue names are there: the window selector, a breadcrumb, a button.
    assert {"24 hours", "7 days", "30 days"} <= {b["text"] for b in light["tests"]}
    assert {"24 hours", "7 days"} <= {b["text"] for b in light["agents"]}
    assert "(project root)" in {b["text"] for b in light["map"]}
    assert "Run the whole suite" in {b["text"] for b in light["select"]}
    assert {"First page", "Next page"} <= {b["text"] for b in light["tests"]}  # the pager
    for b in (b for found in light.values() for b in found):
        back, text = luminance(b["background"], theme), luminance(b["color"], theme)
        if theme == "dark":
            assert back < 0.12 and text > 0.5, b  # dark, with light text
        else:
            assert back > 0.5 and text < 0.1, b  # light, with dark text
        assert max(back, text) + 0.05 >= 4.5 * (min(back, text) + 0.05), b  # readable
    # The window chosen stands out from the others, in either theme.
    window = [b for b in light["tests"] if "bk-btn-light" in b["classes"]]
    chosen = [b for b in window if "bk-active" in b["classes"]]
    other = [b for b in window if "bk-active" not in b["classes"]]
    assert len(chosen) == 1 and abs(luminance(chosen[0]["background"], theme) - luminance(
        other[0]["background"], theme)) > 0.02
    # Other buttons keep their own colours: the primary Refresh stays blue.
    refresh = next(b for b in seen["tests"] if b["text"] == "Refresh")
    assert "bk-btn-primary" in refresh["classes"]
    r, g, b_ = (int(x) for x in re.findall(r"\d+", refresh["background"])[:3])
    assert b_ > r + 60 and b_ > 120

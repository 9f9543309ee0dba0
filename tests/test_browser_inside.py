"""The Inside the ELBO page in headless Chromium as a projector shows it (1024x768, sidebar
open): every tab drawn, no error box, nothing wider than its box. Screenshots of each tab go to
artifacts/ for a human to look at."""

from browser import ARTIFACTS, browser_page, error_boxes, needs_browser, served_app, wait_idle

pytestmark = needs_browser

# Tab label, the last words it shows, and how many charts it draws.
TABS = [("1. Two estimators", "The ELBO line is estimator B", 1),
        ("2. How tight", "samples per point", 1),
        ("3. Why reparameterise", "The KL term's gradient is exact", 1),
        ("4. Where the nats go", "Each unit's KL to the prior", 2)]
# What a projector would cut: the page wider than the window; an equation, a table or a chart
# wider than its box; tab labels that only show by scrolling the tab bar sideways.
TOO_WIDE = """() => {
    const wide = [];
    if (document.documentElement.scrollWidth > innerWidth) wide.push('the page');
    const boxes = document.querySelectorAll('.katex-display, table, .js-plotly-plot, [role="tablist"]');
    for (const el of boxes) {
        if (el.scrollWidth > el.clientWidth + 1) wide.push(el.className + ': ' + el.textContent.slice(0, 60));
    }
    return wide;
}"""
# A tab label taller than one line of text is wrapped, or broken mid-word.
WRAPPED_TABS = """() => [...document.querySelectorAll('[role="tab"]')]
    .filter(t => t.querySelector('p') && t.querySelector('p').getBoundingClientRect().height >
                 1.5 * parseFloat(getComputedStyle(t.querySelector('p')).lineHeight))
    .map(t => t.textContent)"""


def test_every_tab_fits_a_1024_by_768_screen_without_errors():
    ARTIFACTS.mkdir(exist_ok=True)
    with served_app() as (url, _), browser_page(1024, 768) as page:
        page.goto(url + "/Inside_the_ELBO")
        page.get_by_role("tab", name=TABS[0][0]).wait_for()
        for label, last_words, charts in TABS:
            page.get_by_role("tab", name=label).click()
            page.get_by_text(last_words).wait_for()
            wait_idle(page)
            page.wait_for_function(
                f"document.querySelectorAll('[role=\"tabpanel\"]:not([hidden]) .js-plotly-plot .main-svg')"
                f".length >= {charts}")
            assert error_boxes(page) == 0, label
            assert page.evaluate(TOO_WIDE) == [], label
            assert page.evaluate(WRAPPED_TABS) == [], label
            panel = page.locator('[role="tabpanel"]:not([hidden])')
            # The app scrolls inside its own container, so a full-page shot would hold only the
            # window: the shot is taken in a window as wide and as tall as the whole page.
            height = page.evaluate("document.querySelector('[data-testid=\"stMain\"]').scrollHeight")
            page.set_viewport_size({"width": 1024, "height": height})
            page.screenshot(path=str(ARTIFACTS / f"browser-inside-{label[0]}.png"))
            page.set_viewport_size({"width": 1024, "height": 768})
            assert panel.locator(".js-plotly-plot").count() == charts, label
            assert panel.locator(".katex-display").count() >= 1, label

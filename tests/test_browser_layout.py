"""Every page as a projector shows it (1024x768, sidebar open, about 560 px of page) in headless
Chromium: nothing wider than the page (the document, equations, tables, images, charts), no label
broken inside a word, no select box or tag that cuts its value, no error box; presentation mode's
sizes; and no request leaving the machine (the favicon is the app's own).

Screenshots of every page go to artifacts/ for a human to look at.
"""

from urllib.parse import urlparse

import pytest

from browser import ARTIFACTS, browser_page, needs_browser, served_app, wait_idle

pytestmark = needs_browser

PAGES = {"": "VAE Explorer", "Train": "Train", "Latent_space": "Latent space", "Interpolate": "Interpolate",
         "Reconstruct": "Reconstruct", "Training_curves": "Training curves", "Semi-supervised": "Semi-supervised M2",
         "Inside_the_ELBO": "Inside the ELBO"}

# What overflows or is cut on the page, measured by the browser itself.
LAYOUT_PROBLEMS = r"""() => {
    const visible = (e) => e.getClientRects().length > 0;
    const problems = [];
    if (document.documentElement.scrollWidth > innerWidth)
        problems.push(`the document is ${document.documentElement.scrollWidth} px wide in ${innerWidth}`);
    const column = document.querySelector('[data-testid="stMainBlockContainer"]');
    const style = getComputedStyle(column);
    const right = column.getBoundingClientRect().right - parseFloat(style.paddingRight);
    const wide = '.katex-display, table, img, canvas, .main-svg, [data-testid="stDataFrame"], ' +
                 '[data-testid="stHorizontalBlock"], [data-testid="stVerticalBlock"], [data-testid="stElementContainer"]';
    for (const e of column.querySelectorAll(wide)) {
        const box = e.getBoundingClientRect();
        if (visible(e) && box.width > 0 && box.right > right + 1)
            problems.push(`${e.tagName}.${e.className.baseVal ?? e.className} ends ${Math.round(box.right - right)} px beyond the page`);
    }
    // KaTeX's Safari fix (.vlist-s, min-width 2 px) sticks out 2 px from an aligned block.
    for (const e of document.querySelectorAll('.katex-display'))
        if (visible(e) && e.scrollWidth > e.clientWidth + 2)
            problems.push(`an equation scrolls: ${e.scrollWidth} px in ${e.clientWidth}: ${e.textContent.slice(0, 40)}`);
    for (const e of column.querySelectorAll('table, [data-testid="stDataFrame"] .dvn-scroller'))
        if (visible(e) && e.scrollWidth > e.clientWidth + 1)
            problems.push(`a table scrolls sideways: ${e.scrollWidth} px in ${e.clientWidth}`);
    // A line break between two letters or digits: a word broken in two.
    const range = document.createRange();
    const texts = '[data-testid="stWidgetLabel"], th, td, button, [data-testid="stTab"], h1, h2, h3, ' +
                  '[data-testid="stMetricLabel"], [data-testid="stRadio"] label, [data-baseweb="tag"]';
    for (const element of document.querySelectorAll(texts)) {
        if (!visible(element)) continue;
        const walker = document.createTreeWalker(element, NodeFilter.SHOW_TEXT);
        for (let node = walker.nextNode(); node; node = walker.nextNode()) {
            const text = node.textContent;
            let bottom = null;
            for (let i = 0; i < text.length; i++) {
                range.setStart(node, i);
                range.setEnd(node, i + 1);
                const box = range.getBoundingClientRect();
                if (box.width === 0 && box.height === 0) continue;
                if (bottom !== null && box.bottom > bottom + 2 && /[\p{L}\p{N}]/u.test(text[i]) &&
                    /[\p{L}\p{N}]/u.test(text[i - 1] || ""))
                    problems.push(`a word broken in two: "${text.slice(Math.max(0, i - 12), i)}|${text.slice(i, i + 12)}"`);
                bottom = box.bottom;
            }
        }
    }
    // A select box's value or a multiselect's tag cut short (Streamlit ends it with an ellipsis).
    for (const box of column.querySelectorAll('[data-baseweb="select"]')) {
        if (!visible(box)) continue;
        for (const e of box.querySelectorAll('div, span'))
            if (e.children.length === 0 && e.textContent.trim() && e.scrollWidth > e.clientWidth + 1)
                problems.push(`a select box cuts "${e.textContent.trim()}"`);
        for (const tag of box.querySelectorAll('[data-baseweb="tag"]'))
            if (tag.getBoundingClientRect().right > box.getBoundingClientRect().right - 40)
                problems.push(`a tag runs under the select box's buttons: "${tag.textContent.trim()}"`);
    }
    // A chart title wider than its chart.
    for (const svg of column.querySelectorAll('.main-svg')) {
        const frame = svg.getBoundingClientRect();
        for (const title of svg.querySelectorAll('.gtitle')) {
            const box = title.getBoundingClientRect();
            if (box.width > 0 && (box.left < frame.left - 1 || box.right > frame.right + 1))
                problems.push(`a chart title is cut: "${title.textContent}"`);
        }
    }
    return problems;
}"""

SIZES = r"""() => {
    const size = (e) => parseFloat(e.style.fontSize) || parseFloat(getComputedStyle(e).fontSize);
    const main = document.querySelector('[data-testid="stMain"]');
    const body = [...main.querySelectorAll('[data-testid="stMarkdownContainer"] p')].filter(e => e.getClientRects().length);
    const chart = [...main.querySelectorAll('.xtick text, .ytick text, .legendtext')];
    return {body: Math.min(...body.map(size)), chart: chart.length ? Math.min(...chart.map(size)) : null};
}"""


def sizes_when(page, condition: str) -> dict:
    """The page's text and chart sizes once `condition` (on them) holds, or after 20 s: the
    style arrives with the page's run, a moment after the heading."""
    try:
        page.wait_for_function(f"() => {{ const s = ({SIZES})(); return {condition}; }}", timeout=20_000)
    except Exception:  # a timeout: the assertion that follows says what the sizes are
        pass
    return page.evaluate(SIZES)


def open_everything(page) -> None:
    for summary in page.locator('[data-testid="stExpander"] details:not([open]) > summary').all():
        summary.click()
    page.wait_for_timeout(300)
    wait_idle(page)


def screenshot(page, name: str) -> None:
    """The whole page: the app scrolls inside its main element, so the window is made as tall."""
    height = page.evaluate("document.querySelector('[data-testid=\"stMain\"]').scrollHeight")
    size = page.viewport_size
    page.set_viewport_size({"width": size["width"], "height": min(max(height, size["height"]), 8000)})
    page.wait_for_timeout(300)
    page.screenshot(path=str(ARTIFACTS / name))
    page.set_viewport_size(size)


def visit(page, url: str, title: str) -> None:
    page.goto(url)
    page.get_by_role("heading", name=title, exact=True).wait_for()
    wait_idle(page)


def test_every_page_fits_a_projector_and_presentation_mode_is_large():
    ARTIFACTS.mkdir(exist_ok=True)
    outside = []

    def only_this_machine(route):
        host = urlparse(route.request.url).hostname
        if route.request.url.startswith(("data:", "blob:")) or host in ("127.0.0.1", "localhost"):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    with served_app() as (url, _), browser_page(1024, 768) as page:
        page.route("**/*", only_this_machine)
        failures = {}
        for path, title in PAGES.items():
            visit(page, f"{url}/{path}", title)
            page.get_by_text("Presentation mode").wait_for()
            open_everything(page)
            page.wait_for_timeout(500)  # charts and the explorer's canvases draw after the run ends
            problems = page.evaluate(LAYOUT_PROBLEMS)
            errors = page.locator('[data-testid="stException"], [data-testid="stAlertContentError"]').count()
            if errors:
                problems.append(f"{errors} error box(es)")
            if problems:
                failures[path or "Home"] = problems
            screenshot(page, f"projector-{path or 'Home'}.png")
        assert not failures, failures

        # Presentation mode from the address, kept through a page switch in the sidebar.
        visit(page, f"{url}/?present=true", "VAE Explorer")
        assert page.get_by_role("switch", name="Presentation mode").is_checked()
        assert sizes_when(page, "s.body >= 20")["body"] >= 20
        screenshot(page, "presenting-Home.png")
        page.get_by_test_id("stSidebar").get_by_role("link", name="Training curves").click()
        page.get_by_role("heading", name="Training curves", exact=True).wait_for()
        wait_idle(page)
        page.locator(".xtick text").first.wait_for()
        sizes = sizes_when(page, "s.body >= 20 && s.chart >= 16")
        assert sizes["body"] >= 20 and sizes["chart"] >= 16, sizes
        assert page.get_by_text("About this page and what to try").count() == 1  # the prose is folded
        assert page.evaluate(LAYOUT_PROBLEMS) == []
        screenshot(page, "presenting-Training_curves.png")

        # Turned off, the page is back to its ordinary sizes.
        page.get_by_test_id("stSidebar").get_by_text("Presentation mode").click()
        page.wait_for_function("() => !location.search.includes('present')")
        wait_idle(page)
        page.locator(".xtick text").first.wait_for()
        sizes = sizes_when(page, "s.body < 20 && s.chart < 16")
        assert sizes["body"] < 20 and sizes["chart"] < 16, sizes
    assert outside == [], outside

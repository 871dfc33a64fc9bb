"""Playwright in Debian's Chromium, as the browser tests use it: one browser for the session
(conftest.py's ``browser``), one fresh context per test that reaches only the local server, and a
screenshot in test-artifacts/ when a test fails."""

from __future__ import annotations

from contextlib import contextmanager

from live_app import APP_DIR, CHROMIUM, CHROMIUM_ARGS

ARTIFACTS = APP_DIR / "test-artifacts"
# Cells of a Gradio Dataframe, row by row (its rows are virtualised divs, not <tr>).
TABLE_ROWS = """table => Array.from(table.querySelectorAll('[role=row].virtual-row')).map(
    row => Array.from(row.querySelectorAll('[role=gridcell]')).map(cell => cell.innerText.trim()))"""

# Where a word is drawn on the page: the middle of its first occurrence in the element's text.
WORD_CENTRE = """(root, word) => {
    const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
        const at = node.textContent.indexOf(word);
        if (at < 0) continue;
        const range = document.createRange();
        range.setStart(node, at);
        range.setEnd(node, at + word.length);
        const box = range.getBoundingClientRect();
        return [box.x + box.width / 2, box.y + box.height / 2];
    }
    return null;
}"""

@contextmanager
def launched():
    """Headless Chromium with the flags it needs on a closed network."""
    from playwright import sync_api

    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@contextmanager
def opened(browser, url: str, request, ready: str, **context_options):
    """A page of ``url`` in a context of its own, once ``ready`` (a selector) is on it; a
    screenshot of it is kept when the test (pytest's ``request``) fails."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, **context_options)
    context.set_default_timeout(20_000)
    # Nothing but the local server: fonts or analytics from elsewhere are refused.
    context.route("**/*", lambda route: route.continue_()
                  if route.request.url.startswith(("http://127.0.0.1", "ws://127.0.0.1"))
                  else route.abort())
    page = context.new_page()
    page.goto(url, wait_until="load")
    page.wait_for_selector(ready)
    screenshot = ARTIFACTS / f"{request.node.name}.png"
    screenshot.unlink(missing_ok=True)
    failed_before = request.session.testsfailed
    yield page
    # A failed call is counted before fixtures are torn down.
    if request.session.testsfailed > failed_before:
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(screenshot), full_page=True)
    context.close()


def choose(page, dropdown_id: str, option: str) -> None:
    """Pick an option; pick again if a refresh of the list moved it under the click."""
    for _ in range(3):
        page.locator(f"#{dropdown_id} input").click()
        page.get_by_role("option", name=option, exact=True).click()
        page.wait_for_timeout(1500)  # one refresh tick of the page
        if page.locator(f"#{dropdown_id} input").input_value() == option:
            return
    raise AssertionError(f"#{dropdown_id} did not keep {option!r}")


def table_rows(page, elem_id: str) -> list[list[str]]:
    return page.locator(f"#{elem_id}").evaluate(TABLE_ROWS)

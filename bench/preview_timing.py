"""Times the web catalog's data preview in Debian's chromium: signs in with
a one-time link, opens a product page ROUNDS times, and prints JSON with,
per round, when the 50 preview rows were on screen and when the page's
DOMContentLoaded ended (ms since navigation start).

Usage: preview_timing.py SIGN_IN_LINK PRODUCT_URL ROUNDS
"""

import json
import sys

from playwright.sync_api import sync_playwright

link, product_url, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]

with sync_playwright() as playwright:
    browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
    page = browser.new_context().new_page()
    page.goto(link)
    results = []
    for _ in range(rounds):
        page.goto(product_url)
        page.wait_for_selector("#preview[data-state]", timeout=30_000)
        state = page.get_attribute("#preview", "data-state")
        rows = page.locator("#preview-table tbody tr").count()
        shown = float(page.get_attribute("#preview", "data-shown-at"))
        loaded = page.evaluate("performance.getEntriesByType('navigation')[0].domContentLoadedEventEnd")
        results.append({"state": state, "rows": rows, "shown_ms": shown, "dom_ms": loaded})
    browser.close()
print(json.dumps(results))

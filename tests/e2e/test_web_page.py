"""The web page in a real headless Chromium (Debian's), against a real server process."""

import os

import pytest

from tests.conftest import require_binary

pytestmark = pytest.mark.integration

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
]


@pytest.fixture
def page(local_server):
    from playwright.sync_api import sync_playwright

    chromium = require_binary(CHROMIUM, "Debian chromium (apt-get install chromium)")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page()
        page.goto(f"{local_server.url}/")
        yield page
        browser.close()


def test_fill_submit_and_read_a_probability(page, tmp_path):
    page.select_option("#pclass", "1")
    page.select_option("#sex", "female")
    page.fill("#age", "30")
    page.fill("#fare", "80")
    page.select_option("#embarked", "C")
    page.click("#submit")
    page.wait_for_selector("#result:not([hidden])", timeout=10_000)
    probability = float(page.text_content("#probability").replace("%", "").strip())
    assert 50 < probability <= 100  # a first-class woman: very likely to survive
    assert page.text_content("#model-version") == "1"
    assert page.is_hidden("#error")
    page.screenshot(path=str(tmp_path / "result.png"))

    page.select_option("#pclass", "3")
    page.select_option("#sex", "male")
    page.fill("#fare", "7")
    before = page.text_content("#probability")  # read before submitting: no race
    page.click("#submit")
    page.wait_for_function(
        "prev => document.querySelector('#probability').textContent !== prev", arg=before
    )
    assert float(page.text_content("#probability").replace("%", "")) < probability


def test_invalid_age_shows_the_api_error(page):
    page.fill("#age", "200")
    page.click("#submit")
    page.wait_for_selector("#error:not([hidden])", timeout=10_000)
    assert page.text_content("#error") == "instances[0].age: must be a number between 0 and 120"
    assert page.is_hidden("#result")


def test_empty_optional_fields_are_imputed(page):
    page.fill("#age", "")
    page.fill("#fare", "")
    page.click("#submit")
    page.wait_for_selector("#result:not([hidden])", timeout=10_000)
    assert "%" in page.text_content("#probability")

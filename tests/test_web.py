"""The web page in a real headless browser (Debian's chromium, driven by Playwright) against the real server over
the fake LLM: upload, result, feedback, history, dashboard, and errors a user can meet."""

from __future__ import annotations

import os
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright
from playwright.sync_api import Error as PlaywrightError

from news_reader.store import Store
from tests.conftest import ARTICLE, business_llm, free_port, running_server

CHROMIUM = Path("/usr/bin/chromium")
# Headless on a machine with no outside network: no sandbox as root, no background traffic to Google.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Iterator[tuple[str, str]]:
    """The site's base URL and its database URL."""
    folder = tmp_path_factory.mktemp("web")
    database = f"sqlite:///{folder / 'news_reader.db'}"
    with business_llm() as llm, running_server(
            {"NEWS_READER_LLM_BASE_URL": llm.base_url, "NEWS_READER_LLM_MODEL": "fake",
             "NEWS_READER_DATABASE_URL": database}, folder / "server.log") as url:
        yield url, database


@pytest.fixture(scope="module")
def browser(tmp_path_factory) -> Iterator[Browser]:
    if not CHROMIUM.is_file():
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium")
    home = tmp_path_factory.mktemp("chromium")  # its crash-report and dconf folders, instead of the home folder's
    env = {**os.environ, "XDG_CONFIG_HOME": str(home / "config"), "XDG_CACHE_HOME": str(home / "cache")}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, env=env)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context()
    yield context.new_page()
    context.close()


def test_upload_analyse_give_feedback_and_find_it_stored_and_in_the_history(site, page, tmp_path):
    url, database = site
    article = tmp_path / "acme.txt"
    article.write_text(ARTICLE)
    page.goto(url)
    expect(page.get_by_text("up to 20,000 characters")).to_be_visible()
    page.set_input_files("#files", article)
    page.get_by_role("button", name="Analyse").click()
    result = page.locator(".result").first
    expect(result.locator(".title")).to_have_text("Acme profits soar as Globex deal collapses", timeout=30_000)
    expect(result.locator(".status")).to_contain_text("Done in")
    expect(result.locator("tbody tr")).to_have_count(2)
    expect(result.locator(".direction.increase")).to_have_text("increase")
    expect(result.locator(".confidence")).to_have_text(["n/a", "n/a"])  # the fake LLM sends no log-probabilities
    expect(result.locator("mark")).to_have_count(2)  # both quotes found in the article, one across a line break

    result.get_by_label("👍 Yes").check()
    result.get_by_label("Comment (optional)").fill("Globex news does not move its shares")
    result.get_by_label("Correct direction for Globex").select_option("none")
    result.get_by_role("button", name="Send feedback").click()
    expect(result.locator(".feedback-status")).to_have_text("Thank you: your feedback is saved.")

    trace_id = re.search(r"trace ([0-9a-f]{32})", result.locator(".meta").inner_text())[1]
    stored = Store(database).analysis(trace_id)
    assert stored.article == ARTICLE and stored.result["title"].startswith("Acme profits")
    (feedback,) = stored.feedback
    assert (feedback.rating, feedback.comment) == ("up", "Globex news does not move its shares")
    assert [(c.business, c.stock_price_change) for c in feedback.corrections] == [("Globex", "none")]
    assert feedback.model == "fake"

    page.get_by_role("link", name="History").click()
    row = page.locator("#history tbody tr", has_text=trace_id)
    expect(row.locator(".feedback")).to_contain_text("Globex → none")


def test_a_binary_file_gets_a_readable_message_and_the_others_are_still_analysed(site, page, tmp_path):
    url, _ = site
    binary = tmp_path / "scan.txt"
    binary.write_bytes(bytes(range(256)) * 4)
    good = tmp_path / "acme.md"
    good.write_text(ARTICLE)
    page.goto(url)
    page.set_input_files("#files", [binary, good])
    page.get_by_role("button", name="Analyse").click()
    failed = page.locator(".result", has_text="scan.txt")
    expect(failed.locator(".status")).to_contain_text("Could not analyse: input looks binary", timeout=30_000)
    expect(failed).not_to_contain_text("Traceback")
    expect(page.locator(".result", has_text="acme.md").locator(".title")).to_contain_text("Acme", timeout=30_000)


def test_a_windows_1252_file_is_read_as_such(site, page, tmp_path):
    url, database = site
    legacy = tmp_path / "legacy.txt"
    legacy.write_bytes(ARTICLE.replace("rocket skates", "café «skates»").encode("cp1252"))
    page.goto(url)
    page.set_input_files("#files", legacy)
    page.get_by_role("button", name="Analyse").click()
    result = page.locator(".result", has_text="legacy.txt")
    expect(result.locator(".title")).to_be_visible(timeout=30_000)
    assert "café «skates»" in Store(database).analyses(limit=1)[0].article


def test_feedback_needs_a_rating(site, page):
    url, _ = site
    page.goto(url)
    page.get_by_label("Article").fill(ARTICLE)
    page.get_by_role("button", name="Analyse").click()
    result = page.locator(".result").first
    expect(result.locator(".title")).to_be_visible(timeout=30_000)
    result.get_by_role("button", name="Send feedback").click()
    expect(result.locator(".feedback-status")).to_have_text("Choose 👍 or 👎 first.")


def test_the_dashboard_draws_its_chart(site, page):
    url, _ = site
    page.goto(f"{url}/dashboard")
    chart = page.locator("#dashboard-chart")
    expect(chart).to_be_visible(timeout=30_000)
    assert page.evaluate("document.getElementById('dashboard-chart').naturalWidth") > 500


def test_analysing_browsing_and_the_dashboard_keep_to_the_content_security_policy(site, page):
    url, _ = site
    refused = []
    page.on("console", lambda message: refused.append(message.text) if "Content Security Policy" in message.text
            else None)
    assert "default-src 'self'" in page.goto(url).headers["content-security-policy"]
    page.get_by_label("Article").fill(ARTICLE)
    page.get_by_role("button", name="Analyse").click()
    expect(page.locator(".result mark")).to_have_count(2, timeout=30_000)
    page.get_by_role("link", name="History").click()
    expect(page.locator("#history tbody tr").first).to_be_visible()
    page.get_by_role("link", name="Dashboard").click()
    expect(page.locator("#dashboard-chart")).to_be_visible(timeout=30_000)
    assert refused == []


def test_an_injected_inline_script_does_not_run(site, page):
    url, _ = site
    page.goto(url)
    with pytest.raises(PlaywrightError):
        page.add_script_tag(content="window.injected = true")
    assert page.evaluate("window.injected") is None


def test_a_model_that_is_down_is_a_readable_message(page, tmp_path):
    closed = f"http://127.0.0.1:{free_port()}/v1"
    with running_server({"NEWS_READER_LLM_BASE_URL": closed, "NEWS_READER_LLM_MAX_RETRIES": "0",
                         "NEWS_READER_DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite'}"},
                        tmp_path / "server.log") as url:
        page.goto(url)
        page.get_by_label("Article").fill(ARTICLE)
        page.get_by_role("button", name="Analyse").click()
        expect(page.locator(".result .status")).to_contain_text("Could not analyse: cannot reach the LLM",
                                                                timeout=30_000)


def test_with_an_api_key_the_page_asks_for_it_and_then_works(page, tmp_path):
    with business_llm() as llm, running_server(
            {"NEWS_READER_LLM_BASE_URL": llm.base_url, "NEWS_READER_SERVING_API_KEY": "web-key-91",
             "NEWS_READER_DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite'}"}, tmp_path / "server.log") as url:
        page.goto(url)
        key_form = page.locator("#api-key")
        expect(key_form).to_be_visible()
        key_form.get_by_label("API key").fill("web-key-91")
        key_form.get_by_role("button", name="Use").click()
        page.get_by_label("Article").fill(ARTICLE)
        page.get_by_role("button", name="Analyse").click()
        expect(page.locator(".result .title")).to_contain_text("Acme", timeout=30_000)


def test_an_analysis_that_could_not_be_saved_says_so_instead_of_offering_feedback(page, tmp_path):
    database = tmp_path / "db.sqlite"
    with business_llm() as llm, running_server(
            {"NEWS_READER_LLM_BASE_URL": llm.base_url, "NEWS_READER_LLM_MODEL": "fake",
             "NEWS_READER_DATABASE_URL": f"sqlite:///{database}?timeout=0.2"}, tmp_path / "server.log") as url:
        page.goto(url)
        other_writer = sqlite3.connect(database, isolation_level=None)
        other_writer.execute("BEGIN IMMEDIATE")  # holds the write lock past the server's busy timeout and retries
        try:
            page.get_by_label("Article").fill(ARTICLE)
            page.get_by_role("button", name="Analyse").click()
            result = page.locator(".result").first
            expect(result.locator(".title")).to_contain_text("Acme", timeout=30_000)
        finally:
            other_writer.close()
        expect(result.locator(".feedback-unavailable")).to_have_text(
            "This analysis could not be saved, so it cannot take feedback. Analyse the article again to rate it.")
        expect(result.locator(".feedback")).to_be_hidden()
        expect(result.get_by_label("Correct direction for Globex")).to_be_disabled()
        expect(result.locator(".meta")).to_contain_text("(not saved)")


def test_feedback_whose_answer_is_lost_is_sent_again_with_its_key_and_saved_once(site, page):
    url, database = site
    keys = []

    def lose_the_first_answer(route):
        keys.append(route.request.headers["idempotency-key"])
        if len(keys) > 1:
            route.continue_()
            return
        route.fetch()  # the server stores the feedback, and its answer never reaches the page
        route.abort("connectionreset")

    page.route("**/feedback", lose_the_first_answer)
    page.goto(url)
    for comment in ("first", "second"):
        page.get_by_label("Article").fill(ARTICLE)
        page.get_by_role("button", name="Analyse").click()
        result = page.locator(".result").first
        expect(result.locator(".status")).to_contain_text("Done in", timeout=30_000)
        result.get_by_label("👎 No").check()
        result.get_by_label("Comment (optional)").fill(comment)
        result.get_by_role("button", name="Send feedback").click()
        expect(result.locator(".feedback-status")).to_have_text("Thank you: your feedback is saved.",
                                                                timeout=10_000)
    first_key, retried_key, second_key = keys
    assert re.fullmatch(r"[0-9a-f]{32}", first_key) and retried_key == first_key != second_key
    first_trace = re.search(r"trace ([0-9a-f]{32})", page.locator(".result .meta").last.inner_text())[1]
    assert [f.comment for f in Store(database).analysis(first_trace).feedback] == ["first"], "stored once"

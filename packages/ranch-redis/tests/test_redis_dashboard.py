"""``ranch dashboard`` in real headless Chromium (Debian's chromium + chromium-driver, Selenium),
against a real redis-server fed by a producer: the page, its controls, and its security rules."""

from __future__ import annotations

import json
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Callable, Dict, Iterator, Optional, Tuple

import pytest
from ranch_core import FairScheduler
from ranch_redis import RedisStorage
from selenium import webdriver
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

sys.path.insert(0, str(Path(__file__).parent))

from ranch_cli_procs import Server

BACKLOG = "celery:web"
TOKEN = "dashboard-token-0123456789"


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    """Headless Chromium (``/usr/bin/chromium``, ``/usr/bin/chromedriver``), one per module."""
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1200,900"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    yield driver
    driver.quit()


@pytest.fixture
def flood(redis_url: str) -> Iterator[FairScheduler]:
    """A test producer: 25 calls of key ``flood``, 2 of ``quiet``."""
    scheduler = FairScheduler(RedisStorage.from_url(redis_url, namespace=BACKLOG))
    scheduler.push_many("flood", list(range(25)))
    scheduler.push_many("quiet", [1, 2])
    yield scheduler
    scheduler.storage.close()  # type: ignore[attr-defined]


def start(url: str, *args: str, env: Optional[Dict[str, str]] = None) -> Server:
    server = Server(url, "dashboard", *args, env=env)
    server.wait_listening()
    return server


def cell_text(driver: WebDriver, key: str, column: str) -> str:
    return str(driver.find_element(By.CSS_SELECTOR, f'#keys tr[data-key="{key}"] .{column}').text)


def wait_for(driver: WebDriver, condition: Callable[[WebDriver], object], timeout: float = 30.0) -> None:
    """Until ``condition`` holds; rows the page redraws meanwhile are looked up again."""
    WebDriverWait(
        driver, timeout, ignored_exceptions=(NoSuchElementException, StaleElementReferenceException)
    ).until(condition)


def click(driver: WebDriver, css: str) -> None:
    """Click the element at ``css`` (found again if the page redrew it first)."""

    def clicked(d: WebDriver) -> bool:
        d.find_element(By.CSS_SELECTOR, css).click()
        return True

    wait_for(driver, clicked)


def request(
    server: Server,
    method: str,
    path: str,
    body: Optional[dict] = None,
    headers: Optional[Dict[str, str]] = None,
) -> Tuple[int, dict]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(f"http://127.0.0.1:{server.port}{path}", data=data, method=method)
    req.add_header("Content-Type", "application/json")
    for name, value in (headers or {}).items():
        req.add_header(name, value)
    try:
        with urllib.request.urlopen(req, timeout=10) as response:
            return int(response.status), json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def test_page_shows_the_flood_and_pauses_it(redis_url: str, flood: FairScheduler, browser: WebDriver) -> None:
    server = start(redis_url)
    try:
        browser.get(f"http://127.0.0.1:{server.port}/?refresh=300")
        wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, '#keys tr[data-key="flood"]'))
        wait_for(browser, lambda d: cell_text(d, "flood", "waiting") == "25")
        wait_for(browser, lambda d: cell_text(d, "quiet", "waiting") == "2")
        backlog_row = f'#backlogs tr[data-backlog="{BACKLOG}"] .waiting'
        wait_for(browser, lambda d: d.find_element(By.CSS_SELECTOR, backlog_row).text == "27")
        flood.push("flood", 99)  # the page refreshes by itself
        wait_for(browser, lambda d: cell_text(d, "flood", "waiting") == "26")
        click(browser, '#keys tr[data-key="flood"] button.pause')
        wait_for(browser, lambda d: flood.metadata("flood").paused)  # checked in Redis
        wait_for(
            browser, lambda d: d.find_elements(By.CSS_SELECTOR, '#keys tr[data-key="flood"] button.resume')
        )
        wait_for(browser, lambda d: cell_text(d, "flood", "state") == "paused")
        click(browser, '#keys tr[data-key="flood"] button.resume')
        wait_for(browser, lambda d: not flood.metadata("flood").paused)
        click(browser, '#keys tr[data-key="quiet"] input.weight')  # focused: the row is kept while typing
        # Select and overwrite (WebDriver's clear() would take the focus away).
        browser.switch_to.active_element.send_keys(Keys.CONTROL, "a", Keys.NULL, "0.5")
        click(browser, '#keys tr[data-key="quiet"] button.set-weight')
        wait_for(browser, lambda d: flood.metadata("quiet").weight == 0.5)
        # The live chart draws a line per key and names it in its legend.
        wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, '#legend span[data-key="flood"]'))
        drawn = browser.execute_script(
            "const c = document.getElementById('chart');"
            "return Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data).some(v => v);"
        )
        assert drawn
    finally:
        assert server.stop() == 0


def test_requests_without_the_token_are_refused(redis_url: str, flood: FairScheduler) -> None:
    server = start(redis_url)
    try:
        target = {"backlog": BACKLOG, "key": "flood"}
        assert request(server, "POST", "/api/pause", target)[0] == 401
        assert request(server, "POST", "/api/pause", target, {"Authorization": "Bearer guess"})[0] == 401
        assert request(server, "GET", "/api/pause")[0] == 405
        assert request(server, "GET", "/api/state", headers={"Host": "evil.example:80"})[0] == 403
        assert not flood.metadata("flood").paused
        status, state = request(server, "GET", "/api/state")
        assert status == 200 and state["backlogs"][0]["keys"][0] == {
            **state["backlogs"][0]["keys"][0],
            "key": "flood",
            "waiting": 25,
        }
    finally:
        assert server.stop() == 0


def test_a_given_token_guards_reads_and_the_page_asks_for_it(
    redis_url: str, flood: FairScheduler, browser: WebDriver
) -> None:
    server = start(redis_url, env={"RANCH_DASHBOARD_TOKEN": TOKEN})
    try:
        assert request(server, "GET", "/api/state")[0] == 401
        bearer = {"Authorization": f"Bearer {TOKEN}"}
        assert request(server, "POST", "/api/pause", {"backlog": BACKLOG, "key": "quiet"}, bearer)[0] == 200
        assert flood.metadata("quiet").paused
        assert request(
            server, "POST", "/api/weight", {"backlog": BACKLOG, "key": "quiet", "weight": 0}, bearer
        ) == (
            400,
            {"error": "weight must be between 0.001 and 1000.0, got 0"},
        )
        assert flood.metadata("quiet").weight == 1.0
        browser.get(f"http://127.0.0.1:{server.port}/?refresh=300")
        browser.execute_script("sessionStorage.clear()")
        browser.get(f"http://127.0.0.1:{server.port}/?refresh=300")
        wait_for(browser, lambda d: d.find_element(By.ID, "tokenbox").is_displayed())
        assert not browser.find_elements(By.CSS_SELECTOR, '#keys tr[data-key="flood"]')
        browser.find_element(By.ID, "token").send_keys(TOKEN)
        click(browser, "#usetoken")
        wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, '#keys tr[data-key="flood"]'))
        wait_for(browser, lambda d: cell_text(d, "quiet", "state") == "paused")
    finally:
        assert server.stop() == 0


def test_read_only_hides_and_refuses_the_controls(
    redis_url: str, flood: FairScheduler, browser: WebDriver
) -> None:
    server = start(redis_url, "--read-only")
    try:
        browser.get(f"http://127.0.0.1:{server.port}/?refresh=300")
        wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, '#keys tr[data-key="flood"]'))
        assert not browser.find_elements(By.CSS_SELECTOR, "#keys button")
        assert not browser.find_element(By.CSS_SELECTOR, "#keys th.controls").is_displayed()
        assert "read-only" in browser.find_element(By.ID, "status").text
        page_token = browser.execute_script("return CONFIG.token")
        bearer = {"Authorization": f"Bearer {page_token}"}
        assert request(server, "POST", "/api/pause", {"backlog": BACKLOG, "key": "flood"}, bearer)[0] == 403
        assert not flood.metadata("flood").paused
    finally:
        assert server.stop() == 0


def test_malformed_requests_are_refused(redis_url: str, flood: FairScheduler) -> None:
    server = start(redis_url)
    try:
        page = urllib.request.urlopen(f"http://127.0.0.1:{server.port}/", timeout=10).read().decode()
        token = json.loads(page.split("const CONFIG = ", 1)[1].split(";", 1)[0])["token"]
        bearer = {"Authorization": f"Bearer {token}"}
        assert request(server, "GET", "/nothing")[0] == 404
        assert request(server, "POST", "/nothing", {}, bearer)[0] == 404
        assert request(server, "POST", "/api/pause", {"backlog": BACKLOG}, bearer)[0] == 400  # no key
        unknown = request(server, "POST", "/api/pause", {"backlog": "celery:nope", "key": "flood"}, bearer)
        assert unknown == (
            400,
            {"error": "unknown backlog 'celery:nope' (`ranch backlogs` lists the backlogs of this Redis)"},
        )
        assert raw_post(server, b"[1]", "application/json", token) == 400
        assert raw_post(server, b"{not json", "application/json", token) == 400
        assert raw_post(server, b"{}", "text/plain", token) == 415
        assert raw_post(server, b"{" + b" " * 5000 + b"}", "application/json", token) == 413
        assert not flood.metadata("flood").paused
        assert request(server, "POST", "/api/pause", {"backlog": BACKLOG, "key": "flood"}, bearer)[0] == 200
        assert flood.metadata("flood").paused
    finally:
        assert server.stop() == 0


def raw_post(server: Server, body: bytes, kind: str, token: str) -> int:
    req = urllib.request.Request(f"http://127.0.0.1:{server.port}/api/pause", data=body, method="POST")
    req.add_header("Content-Type", kind)
    req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def test_off_loopback_without_a_token_is_refused(redis_url: str) -> None:
    from ranch_cli_procs import free_port, run

    done = run(redis_url, "dashboard", "--host", "0.0.0.0", "--port", str(free_port()))
    assert done.returncode == 2 and "needs a token" in done.stderr


def test_a_pair_is_labelled_group_slash_member_and_can_be_paused(redis_url: str) -> None:
    """Two-level keys: the state names a pair as a list of two with the label ``group/member``;
    the controls take that list back."""
    scheduler = FairScheduler(RedisStorage.from_url(redis_url, namespace="celery:pairs"))
    scheduler.push_many(("acme", "u1"), [1, 2, 3])
    server = start(redis_url)
    try:
        page = urllib.request.urlopen(f"http://127.0.0.1:{server.port}/", timeout=10).read().decode()
        token = json.loads(page.split("const CONFIG = ", 1)[1].split(";", 1)[0])["token"]
        bearer = {"Authorization": f"Bearer {token}"}
        status, state = request(server, "GET", "/api/state", None, bearer)
        assert status == 200
        backlog = next(b for b in state["backlogs"] if b["backlog"] == "celery:pairs")
        assert [(k["key"], k["label"], k["waiting"]) for k in backlog["keys"]] == [
            (["acme", "u1"], "acme/u1", 3)
        ]
        body = {"backlog": "celery:pairs", "key": ["acme", "u1"]}
        assert request(server, "POST", "/api/pause", body, bearer)[0] == 200
        assert scheduler.metadata(("acme", "u1")).paused and not scheduler.metadata("acme").paused
        bad = {"backlog": "celery:pairs", "key": ["acme"]}
        assert request(server, "POST", "/api/pause", bad, bearer)[0] == 400
    finally:
        assert server.stop() == 0
        scheduler.storage.close()  # type: ignore[attr-defined]

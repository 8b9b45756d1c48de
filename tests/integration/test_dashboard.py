"""The dashboard in a real headless Chromium (Debian's, driven by its chromedriver through selenium): it loads,
shows a crash, restarts a bot with the token (the pid changes) and activates the kill switch (the bots stop).

SUPCTL_DASHBOARD_PNG=docs/dashboard.png saves the screenshot the README shows.
"""

from __future__ import annotations

import os
import shutil
import signal

import pytest
from harness import bot, toml_argv
from http_helpers import HTTP, base_url, token

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not (shutil.which("chromium") and shutil.which("chromedriver")),
                                                   reason="needs chromium and chromedriver")]

FLEET = f'''
[supervisor]
state_dir = "state"
{HTTP}
[bots.feed]
cmd = {toml_argv(bot("busy"))}
start_grace = "200ms"

[bots.trader]
cmd = {toml_argv(bot("sleeper"))}
start_grace = "200ms"
instances = 2

[[bots.trader.health]]
check = "exec"
cmd = ["true"]
every = "2s"

[bots.victim]
cmd = {toml_argv(bot("sleeper"))}
start_grace = "200ms"
backoff = {{ initial = "30s", max = "30s" }}
'''


@pytest.fixture
def browser(tmp_path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = shutil.which("chromium")
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 f"--user-data-dir={tmp_path / 'chromium'}", "--window-size=1280,760"):
        opts.add_argument(flag)
    driver = webdriver.Chrome(options=opts, service=Service(shutil.which("chromedriver"), log_output=os.devnull))
    yield driver
    driver.quit()


def test_dashboard_live_in_chromium(master, browser) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    m = master(FLEET)
    url = base_url(m)
    m.wait_transition("victim:0", "RUNNING")
    wait = WebDriverWait(browser, 20, poll_frequency=0.05)

    def cell(key: str, name: str) -> str:
        return browser.find_element(By.CSS_SELECTOR, f'[id="row-{key}"] .{name}').text

    browser.get(url)
    wait.until(lambda d: cell("victim:0", "state") == "RUNNING" and cell("feed:0", "state") == "RUNNING")
    wait.until(lambda d: d.find_element(By.ID, "conn").text == "live")
    wait.until(lambda d: "tick" in d.find_element(By.ID, "logtext").text)  # the first bot's log pane follows

    os.kill(int(cell("victim:0", "pid")), signal.SIGKILL)
    wait.until(lambda d: cell("victim:0", "state") == "BACKOFF")
    assert cell("victim:0", "pid") == "-" and "SIGKILL" in cell("victim:0", "exit")

    old = cell("trader:1", "pid")
    browser.find_element(By.CSS_SELECTOR, '[id="row-trader:1"] button[data-verb="restart"]').click()
    wait.until(lambda d: d.find_element(By.ID, "ask").is_displayed())
    browser.find_element(By.ID, "ask-input").send_keys(token(m))
    browser.find_element(By.ID, "ask-ok").click()
    wait.until(lambda d: cell("trader:1", "state") == "RUNNING" and cell("trader:1", "pid") not in (old, "-"))
    assert cell("trader:0", "state") == "RUNNING"
    if os.environ.get("SUPCTL_DASHBOARD_PNG"):  # with a few sparkline samples (one per 5 s)
        WebDriverWait(browser, 60).until(lambda d: d.execute_script('return samples["feed:0"].cpu.length') >= 6)
        browser.save_screenshot(os.environ["SUPCTL_DASHBOARD_PNG"])

    browser.find_element(By.ID, "ks-button").click()
    wait.until(lambda d: d.find_element(By.ID, "ask").is_displayed())
    browser.find_element(By.ID, "ask-input").send_keys("exchange halted")
    browser.find_element(By.ID, "ask-ok").click()  # the token was asked once: not again
    wait.until(lambda d: "KILL SWITCH ACTIVE" in d.find_element(By.ID, "ks-state").text)
    assert "exchange halted" in browser.find_element(By.ID, "ks-state").text
    keys = ("feed:0", "trader:0", "trader:1", "victim:0")
    wait.until(lambda d: all(cell(k, "state") == "STOPPED" for k in keys))
    assert "kill switch active" in m.ctl("start", "feed").stdout

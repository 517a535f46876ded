"""The live page in a real headless browser (Debian chromium + chromium-driver, Selenium 4).

A live loop with in-memory doubles behind the real inference app (uvicorn on a free port): the
page loads, its chart holds data, and it changes when a new observation arrives. The screenshot
is saved in the test's tmp dir (and copied to $FLTS_SCREENSHOT_DIR when set).
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest
from pydantic import SecretStr
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from tests._stage_data import Setup
from tests.unit.test_inference_service import logged_model, selected_event
from tests.unit.test_live_service import observations

from flts.api.inference_app import create_inference_app
from flts.api.live_page import live_router
from flts.domain.messages import Observation
from flts.infra.procs import free_port
from flts.services.inference import InferenceService
from flts.services.live import LiveLoop
from flts.serving.auth import bearer_check
from flts.serving.model_state import ModelState
from flts.settings import InferenceSettings, LiveSettings

CHROMIUM = shutil.which("chromium")
CHROMEDRIVER = shutil.which("chromedriver")
T = TypeVar("T")
#: Upper bound per wait: the page polls every second, but a loaded 2-core CI machine (the
#: suite's stacks, a cold chromium) has taken longer than 20 s to paint.
WAIT_S = 60.0

pytestmark = pytest.mark.skipif(
    CHROMIUM is None or CHROMEDRIVER is None,
    reason="Debian chromium and chromium-driver are not installed (make browser installs them)",
)


@pytest.fixture(params=[None, "s3cret"], ids=["open", "with-api-token"])
def live_server(
    request: pytest.FixtureRequest,
) -> Iterator[tuple[str, InferenceService, list[Observation]]]:
    """The live page; with API_TOKEN set, the page URL carries the token in its fragment."""
    import uvicorn

    setup = Setup()
    live = LiveLoop(LiveSettings(metrics_every=5), setup.ctx, "performance-eval")  # type: ignore[call-arg]
    service = InferenceService(InferenceSettings(), setup.ctx, ModelState(), live=live)
    service.on_selected(selected_event(logged_model(setup, "champion")))
    items = observations(80)
    for obs in items[:60]:
        live.on_observation(obs)
    app = create_inference_app(service.state)
    token = request.param
    check = bearer_check(None if token is None else SecretStr(token))
    app.include_router(live_router(live.snapshot, check))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        thread.join(0.05)
    try:
        page = f"http://127.0.0.1:{port}/live" + (f"#token={token}" if token else "")
        yield page, service, items[60:]
    finally:
        server.should_exit = True
        thread.join(10)
        setup.tracker.close()


def _settled(read: Callable[[], T]) -> T:
    """``read()`` again when the page re-rendered the element between finding and reading it
    (the page redraws every second; a stale reference is a race, not a failure)."""
    for _ in range(50):
        try:
            return read()
        except (StaleElementReferenceException, NoSuchElementException):
            time.sleep(0.1)
    return read()


def _wait(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if _settled(condition):
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}")


def test_live_page_draws_data_and_follows_new_observations(
    live_server: tuple[str, InferenceService, list[Observation]], tmp_path: Path
) -> None:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    url, service, later = live_server
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1100,900"):
        options.add_argument(arg)
    options.add_argument(f"--user-data-dir={tmp_path / 'profile'}")
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        driver.get(url)
        assert driver.title == "FLTS live"

        def points() -> int:
            charts = driver.find_elements(By.CSS_SELECTOR, "svg[data-points]")
            return int(charts[0].get_attribute("data-points") or 0) if charts else 0

        _wait(lambda: points() > 0, WAIT_S, "the chart to hold data")
        before = _settled(points)
        count = _settled(lambda: driver.find_element(By.CSS_SELECTOR, ".observations").text)
        assert count == "60"
        path = _settled(
            lambda: driver.find_element(By.CSS_SELECTOR, "path.actual").get_attribute("d") or ""
        )
        assert path.count("L") >= 50  # one segment per actual

        assert service.live is not None
        service.live.on_observation(later[0])
        _wait(
            lambda: driver.find_element(By.CSS_SELECTOR, ".observations").text == "61",
            WAIT_S,
            "the page to show the new observation",
        )
        _wait(lambda: points() > before, WAIT_S, "the chart to grow")
        shot = tmp_path / "live-page.png"
        assert driver.save_screenshot(str(shot))
        assert shot.stat().st_size > 10_000
        if target := os.environ.get("FLTS_SCREENSHOT_DIR"):
            shutil.copy(shot, Path(target) / shot.name)
    finally:
        driver.quit()

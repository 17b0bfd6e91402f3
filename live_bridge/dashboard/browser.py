"""Headless Chromium (Debian's ``chromium`` and ``chromium-driver``) driven by Selenium, for
the dashboard's browser test and render benchmark."""

from __future__ import annotations

import shutil

CHROMIUM = ("chromium", "chromium-browser", "google-chrome")
DRIVER = ("chromedriver",)


def missing() -> str | None:
    """Why a headless browser cannot run here, or None when it can."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[test]')"
    if not any(shutil.which(b) for b in CHROMIUM) or not any(shutil.which(d) for d in DRIVER):
        return ("no chromium/chromedriver on PATH (Debian: apt-get install -y chromium "
                "chromium-driver)")
    return None


def chromium(width: int = 1400, height: int = 900):
    """A headless Chromium WebDriver (the caller quits it)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                f"--window-size={width},{height}", "--disable-extensions"):
        options.add_argument(arg)
    options.binary_location = next(shutil.which(b) for b in CHROMIUM if shutil.which(b))
    service = Service(next(shutil.which(d) for d in DRIVER if shutil.which(d)))
    return webdriver.Chrome(options=options, service=service)

from browser import browser_or_skip, screenshot

from ioi.sandbox.server import BackgroundServer


def test_researcher_page_renders_in_a_real_browser(app):
    with BackgroundServer(app) as server, browser_or_skip() as driver:
        driver.get(f"{server.url}/orcid")
        assert "ORCID at TU" in driver.title
        path = screenshot(driver, "orcid-landing")
        assert path.stat().st_size > 1000

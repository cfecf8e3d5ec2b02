"""A person's whole visit in headless Chromium: campus sign-in (real slapd), connect through the ORCID
simulator's consent page, review, submit. Screenshots go to tests/artifacts/orcid-*.png."""

from __future__ import annotations

import pytest
from browser import browser_or_skip, screenshot
from conftest import _reset_tables, free_port, make_app
from ldap_server import PEOPLE_DN, SlapdUnavailable, start_slapd
from test_orcid_support import PERSON_EMAIL, seed_org_and_position, seed_works, simulator_settings

from ioi.extensions import db
from ioi.sandbox.orcid import OrcidSimulator
from ioi.sandbox.server import BackgroundServer


@pytest.fixture(scope="module")
def slapd(tmp_path_factory):
    try:
        server = start_slapd(tmp_path_factory.mktemp("slapd"))
    except SlapdUnavailable as exc:
        pytest.skip(str(exc))
    yield server
    server.stop()


def test_sign_in_connect_review_and_submit_in_a_browser(migrated, slapd, smtp_server):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import Select, WebDriverWait

    simulator = OrcidSimulator(rate=None)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    client = simulator.register_client(redirect_uris=[f"{base}/orcid"], name="Test University ORCID")
    researcher = simulator.create_researcher("Jane", "Doe", PERSON_EMAIL)
    simulator.create_researcher("Omar", "Haddad", "omar@example.org")
    with simulator.serve() as orcid:
        app = make_app(
            migrated,
            LDAP_HOSTNAME_SSL=slapd.url,
            LDAP_BASE_DN="dc=example,dc=edu",
            LDAP_BIND_DN_TEMPLATE=f"uid={{username}},{PEOPLE_DN}",
            SMTP_PORT=smtp_server[0],
            **simulator_settings(orcid.url, client, redirect_uri=f"{base}/orcid"),
        )
        with app.app_context():
            _reset_tables()
            seed_org_and_position()
            seed_works(6, orcid=researcher.orcid)
            seed_works(1, name="Doe, J.", orcid=researcher.orcid, start=20)
            db.session.remove()
        with BackgroundServer(app, port=port), browser_or_skip() as driver:
            driver.get(f"{base}/orcid")
            screenshot(driver, "orcid-1-sign-in")
            driver.find_element(By.ID, "username").send_keys("jdoe")
            driver.find_element(By.ID, "password").send_keys("not my password")
            driver.find_element(By.CSS_SELECTOR, "form.stacked button[type=submit]").click()
            WebDriverWait(driver, 10).until(ec.presence_of_element_located((By.CSS_SELECTOR, ".flash-error")))
            assert "The username or password is not correct." in driver.page_source
            screenshot(driver, "orcid-1b-bad-password")
            assert driver.find_element(By.ID, "username").get_attribute("value") == "jdoe"  # kept, password not
            driver.find_element(By.ID, "password").send_keys("correct horse")
            driver.find_element(By.CSS_SELECTOR, "form.stacked button[type=submit]").click()
            WebDriverWait(driver, 10).until(ec.presence_of_element_located((By.CSS_SELECTOR, ".permissions-form")))
            assert "Welcome, Jane Q. Doe" in driver.page_source
            screenshot(driver, "orcid-2-welcome")

            driver.find_element(By.CSS_SELECTOR, ".permissions-form button[type=submit]").click()
            WebDriverWait(driver, 10).until(ec.url_contains("/oauth/authorize"))
            assert driver.current_url.startswith(f"{orcid.url}/oauth/authorize")
            select = Select(driver.find_element(By.NAME, "researcher"))
            assert select.first_selected_option.get_attribute("value") == researcher.orcid  # email pre-fill
            screenshot(driver, "orcid-3-orcid-consent")
            driver.find_element(By.CSS_SELECTOR, "button[value=deny]").click()
            WebDriverWait(driver, 10).until(ec.url_contains(f"{base}/orcid?"))
            assert "No permission was given" in driver.page_source
            screenshot(driver, "orcid-3b-denied")
            driver.find_element(By.CSS_SELECTOR, "button.button-orcid").click()  # try again
            WebDriverWait(driver, 10).until(ec.url_contains("/oauth/authorize"))
            driver.find_element(By.CSS_SELECTOR, "button[value=authorize]").click()
            WebDriverWait(driver, 10).until(ec.url_contains("/orcid/review"))

            assert driver.current_url == f"{base}/orcid/review"
            boxes = driver.find_elements(By.CSS_SELECTOR, "input[name=item]")
            assert len(boxes) == 8 and all(box.is_selected() for box in boxes)
            works = driver.find_elements(By.CSS_SELECTOR, "#works input[name=item]")
            driver.find_element(By.CSS_SELECTOR, "[data-check=none]").click()
            assert not any(box.is_selected() for box in works) and boxes[-1].is_selected()
            driver.find_element(By.CSS_SELECTOR, "[data-check=all]").click()
            driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", boxes[0])
            boxes[0].click()  # not mine
            screenshot(driver, "orcid-4-review")
            driver.find_element(By.CSS_SELECTOR, ".sticky-actions button[type=submit]").click()
            WebDriverWait(driver, 30).until(ec.presence_of_element_located((By.CSS_SELECTOR, ".results")))

            assert "Your choices are saved" in driver.page_source
            screenshot(driver, "orcid-5-saved")
            assert len(simulator.items(researcher.orcid, "work")) == 6
            assert len(simulator.items(researcher.orcid, "employment")) == 1

            driver.get(f"{base}/orcid")
            assert "History" in driver.page_source
            screenshot(driver, "orcid-6-home")
            driver.get(f"{base}/orcid/review")
            assert driver.page_source.count(">On ORCID<") == 7
            screenshot(driver, "orcid-7-review-again")
            driver.set_window_size(390, 844)  # a phone
            screenshot(driver, "orcid-8-review-phone")
            driver.set_window_size(1280, 900)
            simulator.fail_next(10, 500, method="DELETE")
            box = driver.find_elements(By.CSS_SELECTOR, "input[name=item]")[1]
            driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", box)
            box.click()
            driver.find_element(By.CSS_SELECTOR, ".sticky-actions button[type=submit]").click()
            WebDriverWait(driver, 30).until(ec.presence_of_element_located((By.CSS_SELECTOR, ".results")))
            assert "could not be sent to ORCID just now" in driver.page_source
            screenshot(driver, "orcid-9-orcid-failing")
            logs = [  # the 401 of the wrong password and the simulator's missing favicon are network entries
                entry
                for entry in driver.get_log("browser")
                if entry["level"] == "SEVERE" and entry.get("source") != "network"
            ]
            assert logs == []  # no CSP violations or script errors
        with app.app_context():
            db.session.remove()
            db.engine.dispose()

"""Dashboard: group matching, the figures from a few aggregate queries, tables, CSV, charts in a browser."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import datetime

from browser import browser_or_skip, screenshot
from test_admin_helpers import NOW, add_orcid, add_person, add_token, sign_in

from ioi.extensions import db
from ioi.models import PutCode, UserSelection
from ioi.orcid_ids import make_orcid
from ioi.sandbox.server import BackgroundServer
from ioi.services import dashboard
from ioi.services.groups import OTHERS, GroupRule, group_of, load_groups

FULL = "/authenticate /read-limited /activities/update"


def test_titles_match_groups_by_title_part_and_exclusion(app):
    groups = load_groups()
    assert [g.label for g in groups] == ["Students", "Faculty", "Postdocs"]
    assert group_of(["PhD Student"], groups) == "Students"
    assert group_of(["phd student "], groups) == "Students"
    assert group_of(["Associate Professor"], groups) == "Faculty"
    assert group_of(["Assistant Prof of Biology"], groups) == "Faculty"
    assert group_of(["Adjunct Prof."], groups) == "Faculty"
    assert group_of(["Professor Emeritus"], groups) == OTHERS
    assert group_of(["Courtesy Professor of Law"], groups) == OTHERS
    assert group_of(["Professional Engineer"], groups) == OTHERS  # "prof " keeps its space
    assert group_of(["Postdoctoral Fellow"], groups) == "Postdocs"
    assert group_of(["Librarian", "PhD Student"], groups) == "Students"  # any title counts
    assert group_of([], groups) == OTHERS
    rule = GroupRule("Staff", titles=("engineer",))
    assert rule.matches("Engineer") and not rule.matches("Chief Engineer")
    assert "job title contains" in groups[1].describe() and "Professor Emeritus" in groups[1].describe()


def seed_dashboard() -> None:
    people = [
        (1, "Curie, Marie", "Professor", make_orcid(1), datetime(2023, 3, 1), FULL),
        (2, "Noether, Emmy", "Assistant Prof of Biology", make_orcid(2), datetime(2024, 5, 1), "/authenticate"),
        (3, "Planck, Max", "Professor Emeritus", make_orcid(3), datetime(2024, 6, 1), FULL),
        (4, "Franklin, Rosalind", "PhD Student", make_orcid(4), datetime(2024, 7, 1), None),
        (5, "Meitner, Lise", "Postdoctoral Fellow", None, None, None),
        (6, "Turing, Alan", "Professional Engineer", None, None, None),
        (7, "Hopper, Grace", "Professor", make_orcid(7), datetime(2025, 1, 1), "/authenticate /read-limited"),
    ]
    for pid, name, title, orcid, added, scope in people:
        add_person(pid, name, f"p{pid}@example.edu", title)
        if orcid:
            add_orcid(pid, orcid, f"p{pid}@example.edu", name, added)
        if scope:
            add_token(orcid, scope)
    add_person(8, "Nobody, Nemo", "nemo@example.edu", None, start="")  # no position at all
    add_orcid(99, make_orcid(99), "gone@example.edu", "Unknown, Person", datetime(2025, 2, 1))  # no local record
    add_token(make_orcid(2), FULL, deleted=NOW, reason="scope_changed")  # retired tokens do not count
    orcid = make_orcid(1)
    for i, (selected, ignored) in enumerate([(NOW, None), (NOW, None), (None, NOW)]):
        db.session.add(UserSelection(orcid=orcid, type="work", localSourceRecordID=f"repository_1/{i}",
                                     selected=selected, ignored=ignored))  # fmt: skip
    db.session.add(UserSelection(orcid=orcid, type="employment", localSourceRecordID="local_person_1_x", selected=NOW))
    db.session.add(UserSelection(orcid=orcid, type="work", localSourceRecordID="repository_1/9", selected=NOW,
                                 deleted=NOW))  # fmt: skip
    db.session.add(PutCode(orcid=orcid, type="work", putCode="1", localSourceRecordID="repository_1/0",
                           submittedData="<work/>", format="xml", apiResponse="201"))  # fmt: skip
    db.session.add(PutCode(orcid=orcid, type="employment", putCode="2", localSourceRecordID="local_person_1_x",
                           submittedData="<employment/>", format="xml", apiResponse="201"))  # fmt: skip
    db.session.commit()


def figures() -> dict[str, dashboard.Figure]:
    return {f.key: f for f in dashboard.build_dashboard(NOW)[1]}


def test_dashboard_figures_count_what_the_tables_hold(app):
    seed_dashboard()
    totals, _ = dashboard.build_dashboard(NOW)
    assert (totals.people, totals.active_people, totals.orcids, totals.live_tokens) == (8, 7, 6, 4)
    figs = figures()
    by_group = figs["orcids-by-group"]
    assert by_group.rows == ["Students", "Faculty", "Postdocs", "Others"]
    assert by_group.series == {"ORCID iDs": [1, 3, 0, 2]}

    per_year = figs["registrations-per-year"]
    assert per_year.rows == ["2023", "2024", "2025"]
    assert per_year.series["Faculty"] == [1, 1, 1]
    assert per_year.series["Others"] == [0, 1, 1]
    assert per_year.series["Students"] == [0, 1, 0]

    scopes = dict(zip(figs["tokens-by-scope"].rows, figs["tokens-by-scope"].series["tokens"], strict=True))
    assert scopes == {
        "authenticate + read limited + update activities": 2,
        "authenticate": 1,
        "authenticate + read limited": 1,
    }

    faculty = dict(zip(figs["faculty-permissions"].rows, figs["faculty-permissions"].series["faculty"], strict=True))
    assert faculty["read limited + update activities"] == 1
    assert faculty["authenticate only"] == 1
    assert faculty["read limited"] == 1
    assert faculty["no permission granted"] == 0

    works = figs["works-and-affiliations"]
    assert works.rows == ["Works", "Affiliations"]
    assert works.series == {"selected": [2, 1], "on ORCID": [1, 1], "ignored": [1, 0]}


def test_dashboard_takes_a_few_queries_whatever_the_data_size(app, statements):
    seed_dashboard()
    with statements() as small:
        dashboard.build_dashboard(NOW)
    for pid in range(100, 160):
        add_person(pid, f"Person, {pid}", f"x{pid}@example.edu", "Professor")
        add_orcid(pid, make_orcid(pid), f"x{pid}@example.edu", "x")
        add_token(make_orcid(pid))
    db.session.commit()
    with statements() as large:
        dashboard.build_dashboard(NOW)
    assert large.value == small.value <= 10


def test_the_dashboard_page_has_a_table_and_a_csv_beside_each_chart(app, client):
    seed_dashboard()
    sign_in(client)
    page = client.get("/admin")
    assert page.status_code == 200
    html = page.text
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    assert "<script>" not in html  # no inline script: chart data travels in data- attributes
    assert html.count('class="chart"') == 5
    assert html.count('<table class="data">') == 5
    for key in ("orcids-by-group", "registrations-per-year", "tokens-by-scope", "faculty-permissions"):
        assert f"/admin/dashboard/{key}.csv" in html
    match = re.search(r'data-chart="([^"]+)"', html)
    spec = json.loads(match.group(1).replace("&#34;", '"').replace("&quot;", '"').replace("&amp;", "&"))
    assert spec["type"] == "pie" and spec["colours"][0] == "#2f6f9f"
    assert "/static/vendor/chartjs/chart.umd.min.js" in html
    assert client.get("/static/vendor/chartjs/chart.umd.min.js").status_code == 200

    response = client.get("/admin/dashboard/orcids-by-group.csv")
    assert response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(response.text)))
    assert rows == [["Group", "ORCID iDs"], ["Students", "1"], ["Faculty", "3"], ["Postdocs", "0"], ["Others", "2"]]
    assert client.get("/admin/dashboard/nothing.csv").status_code == 404


def test_dashboard_colours_come_from_local_colors(app, migrated):
    from conftest import make_app

    seed_dashboard()
    other = make_app(migrated, LOCAL_COLORS="#111111 #222222")
    client = other.test_client()
    sign_in(client)  # the users row is written through the `app` fixture's (reset) database
    with other.app_context():
        html = client.get("/admin").text
        db.session.remove()
        db.engine.dispose()
    charts = re.findall(r'data-chart="([^"]+)"', html)
    assert charts and all("#111111" in c and "#2f6f9f" not in c for c in charts)


def session_cookie(client) -> str:
    client.get("/admin")
    return client.get_cookie("session").value


def test_dashboard_screenshot_shows_charts(app, client):
    seed_dashboard()
    sign_in(client)
    cookie = session_cookie(client)
    with BackgroundServer(app) as server, browser_or_skip(1400, 900) as driver:
        driver.get(f"{server.url}/static/css/ioi.css")
        driver.add_cookie({"name": "session", "value": cookie, "path": "/"})
        driver.get(f"{server.url}/admin")
        assert "Dashboard" in driver.title
        drawn = driver.execute_script("return document.querySelectorAll('.chart-box.drawn').length")
        assert drawn == 5, "every chart is drawn by the local Chart.js"
        errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE" and "favicon" not in e["message"]]
        assert not errors, errors
        path = screenshot(driver, "admin-dashboard")
        assert path.stat().st_size > 10000

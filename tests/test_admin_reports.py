"""Task reports and the ORCID call log: listed, filtered, errors first, paginated, escaped."""

from __future__ import annotations

from datetime import datetime, timedelta

from test_admin_helpers import sign_in

from ioi.extensions import db
from ioi.models import Message, OrcidCall
from ioi.services import task_reports

START = datetime(2026, 11, 1, 8, 0, 0)


def seed_messages() -> None:
    for i in range(60):
        when = START + timedelta(hours=i)
        db.session.add(Message(process="harvestRepository", type="summary", message=f"- {i} new items\n- 0 errors",
                               timestamp=when))  # fmt: skip
    db.session.add(Message(process="syncWorksToORCID", type="summary", message="- 3 new items\n- 2 errors",
                           timestamp=START))  # fmt: skip
    text = "ERROR: <script>alert(1)</script> 401 for 0000-0002-1825-0097"
    db.session.add(Message(process="syncWorksToORCID", type="report", message=text, timestamp=START))
    db.session.commit()


def test_messages_are_listed_with_errors_first_and_paginated(app):
    seed_messages()
    page = task_reports.list_messages(page=1, size=50)
    assert page.total == 62 and page.pages == 2
    assert [m.process for m in page.items[:2]] == ["syncWorksToORCID", "syncWorksToORCID"]
    assert page.items[2].message.startswith("- 59 new items")  # then newest first
    newest = task_reports.list_messages(errors_first=False, page=1, size=50)
    assert newest.items[0].message.startswith("- 59 new items")
    second = task_reports.list_messages(page=2, size=50)
    assert len(second.items) == 12 and second.has_previous and not second.has_next
    only = task_reports.list_messages(process="syncWorksToORCID")
    assert only.total == 2
    assert task_reports.processes() == ["harvestRepository", "syncWorksToORCID"]
    assert task_reports.list_messages(page=99, size=50).page == 2  # clamped


def test_the_reports_page_filters_reads_and_escapes(app, client):
    seed_messages()
    sign_in(client)
    html = client.get("/admin/reports").text
    assert "Page 1 of 2 (62 rows)" in html
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert 'class="has-errors"' in html
    assert "Older →" in html
    html = client.get("/admin/reports?process=syncWorksToORCID").text
    assert "Page 1 of 1 (2 rows)" in html and "harvestRepository</td>" not in html
    html = client.get("/admin/reports?page=2&order=newest").text
    assert "Page 2 of 2" in html
    report = db.session.query(Message).filter_by(type="report").one()
    html = client.get(f"/admin/reports/{report.messageID}").text
    assert "ERROR: &lt;script&gt;" in html
    assert client.get("/admin/reports/999999").status_code == 404
    assert client.get("/admin/reports?page=abc").status_code == 200


def test_the_orcid_call_log_is_paginated_with_failures_first_on_request(app, client):
    for i in range(55):
        db.session.add(OrcidCall(process="syncWorksToORCID", method="POST", url=f"https://api.orcid.org/v3.0/x/work/{i}",
                                 status=201, ms=100 + i, timestamp=START + timedelta(minutes=i)))  # fmt: skip
    db.session.add(OrcidCall(process="syncAffiliationsToORCID", method="PUT", url="https://api.orcid.org/v3.0/y",
                             status=None, ms=30000, timestamp=START - timedelta(days=1)))  # fmt: skip
    db.session.add(OrcidCall(process="syncWorksToORCID", method="GET", url="https://api.orcid.org/v3.0/z",
                             status=401, ms=80, timestamp=START - timedelta(days=2)))  # fmt: skip
    db.session.commit()
    page = task_reports.list_calls(errors_first=True)
    assert [c.status for c in page.items[:2]] == [None, 401]
    assert task_reports.list_calls().items[0].url.endswith("/work/54")
    assert task_reports.list_calls(process="syncAffiliationsToORCID").total == 1
    sign_in(client)
    html = client.get("/admin/orcid-calls?order=failed").text
    assert "no answer" in html and "Page 1 of 2 (57 rows)" in html
    html = client.get("/admin/orcid-calls?process=syncAffiliationsToORCID").text
    assert "(1 rows)" in html

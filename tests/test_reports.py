from datetime import datetime

import pytest
import sqlalchemy as sa

from ioi import settings_of
from ioi.config import load_settings
from ioi.extensions import db
from ioi.models import Message
from ioi.services.reports import TaskReport, email_report, finish_report, last_run, should_email

NOW = datetime(2026, 3, 1, 3, 0, 0)


def harvest_report():
    report = TaskReport("harvestRepository")
    report.count("all", 120)
    report.count("new", 3)
    report.count("modified", 2)
    report.count("unchanged", 115)
    report.log("10754/1 new")
    return report


def test_summary_has_one_line_per_counter_and_the_error_count():
    report = harvest_report()
    report.error("10754/9 could not be fetched: 500")
    assert report.summary() == ("- 120 all items\n- 3 new items\n- 2 modified items\n- 115 unchanged items\n- 1 errors")
    assert "ERROR: 10754/9 could not be fetched: 500" in report.full_text()
    assert report.full_text().endswith(report.summary())


def test_report_and_summary_rows_are_saved_and_give_the_last_run(app):
    assert last_run("harvestRepository") is None
    finish_report(harvest_report(), settings_of(app), NOW)
    rows = db.session.execute(sa.select(Message).order_by(Message.messageID)).scalars().all()
    assert [(m.process, m.type, m.timestamp) for m in rows] == [
        ("harvestRepository", "report", NOW),
        ("harvestRepository", "summary", NOW),
    ]
    assert rows[1].message == harvest_report().summary()
    assert "10754/1 new" in rows[0].message
    assert last_run("harvestRepository") == NOW
    assert last_run("syncWorksToORCID") is None


@pytest.mark.parametrize(
    "level,changes,errors,expected",
    [
        ("allChanges", True, 0, True),
        ("allChanges", False, 0, False),
        ("allChanges", False, 1, True),
        ("errorsOnly", True, 0, False),
        ("errorsOnly", False, 2, True),
        ("", True, 3, False),
    ],
)
def test_email_report_level(level, changes, errors, expected):
    report = TaskReport("syncWorksToORCID")
    report.count("all", 10)
    report.count("skipped - previously submitted XML was identical", 10)
    if changes:
        report.count("new", 1)
    for _ in range(errors):
        report.error("failed")
    assert should_email(report, level) is expected


def test_report_email_reaches_ir_email_over_smtp(mail_app):
    app, mailbox = mail_app
    report = harvest_report()
    report.error("10754/9 could not be fetched: 500")
    assert finish_report(report, settings_of(app), NOW) is True

    (sender, recipients, message) = mailbox.messages[0]
    assert recipients == ["repository@example.edu"] and sender == "repository@example.edu"
    assert message["Subject"] == "[TU IOI] harvestRepository: 1 error"
    body = message.get_content()
    assert "- 3 new items" in body and "- 1 errors" in body and "10754/9 could not be fetched" in body


def test_no_email_without_changes_or_errors(mail_app):
    app, mailbox = mail_app
    report = TaskReport("harvestRepository")
    report.count("all", 5)
    report.count("unchanged", 5)
    assert finish_report(report, settings_of(app), NOW) is False
    assert mailbox.messages == []
    assert db.session.execute(sa.select(sa.func.count()).select_from(Message)).scalar() == 2


def test_unreachable_smtp_server_does_not_lose_the_report(app, caplog):
    settings = load_settings(
        {"SECRET_KEY": "x" * 20, "SMTP_HOST": "127.0.0.1", "SMTP_PORT": 1, "SMTP_PASSWORD": "hunter2-secret",
         "SMTP_USER": "ioi", "EMAIL_REPORT_LEVEL": "errorsOnly"},
        env_file=None,
    )  # fmt: skip
    report = TaskReport("updateORCIDiDsInDSpace")
    report.error("DSpace login failed")
    assert finish_report(report, settings, NOW) is False
    assert last_run("updateORCIDiDsInDSpace") == NOW
    assert "report email for updateORCIDiDsInDSpace not sent" in caplog.text
    assert "hunter2-secret" not in caplog.text
    assert email_report(report, settings) is False

"""Send Emails: who is invited, templates with a preview, test and batch sends over real SMTP, the lock."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta

import pytest
from browser import browser_or_skip, screenshot
from sqlalchemy import func, select
from test_admin_helpers import NOW, add_orcid, add_person, add_token, sign_in, token_from

from ioi import settings_of
from ioi.extensions import db
from ioi.models import EmailBatch, EmailTemplate
from ioi.orcid_ids import make_orcid
from ioi.sandbox.server import BackgroundServer
from ioi.services import invitations
from ioi.services.invitations import BatchRunning, Invitee, invitation_lists, record_sent, run_batch, start_batch

TODAY = datetime.now().replace(microsecond=0)


def seed_people(now: datetime = TODAY) -> None:
    """One person per situation; all Faculty unless said otherwise."""
    add_person(1, "Curie, Marie", "marie@example.edu", "Professor")  # initial
    add_person(2, "Noether, Emmy Amalie", "EMMY@example.edu", "Professor")  # followup (emailed before)
    record_sent("emmy@example.edu", "initial", now - timedelta(days=30))
    add_person(3, "Planck, Max", "max@example.edu", "Professor")  # noPermissions
    add_orcid(3, make_orcid(3), "max@example.edu", "Max Planck")
    add_token(make_orcid(3), deleted=now - timedelta(days=3), reason="disconnected")
    add_person(4, "Franklin, Rosalind", "rosalind@example.edu", "Professor")  # reconsent
    add_orcid(4, make_orcid(4), "rosalind@example.edu", "Rosalind Franklin")
    add_token(make_orcid(4), deleted=now - timedelta(days=2), reason="invalid_token")
    add_person(5, "Hopper, Grace", "grace@example.edu", "Professor")  # connected: nobody to invite
    add_orcid(5, make_orcid(5), "grace@example.edu", "Grace Hopper")
    add_token(make_orcid(5))
    add_person(6, "Meitner, Lise", "lise@example.edu", "Professor", end="2021-06-30")  # left
    add_person(7, "Turing, Alan", None, "Professor")  # no address
    add_person(8, "Lovelace, Ada", "ada@example.edu", "Librarian")  # Others, initial
    add_person(9, "Goodall, Jane", "jane@example.edu", "PhD Student")  # Students, initial
    add_person(10, "Future, Fay", "fay@example.edu", "Professor", start="2099-01-01")  # not started
    db.session.commit()


def emails_of(invitees: list[Invitee]) -> list[str]:
    return [i.email for i in invitees]


def test_people_are_listed_by_group_and_invitation_type(app):
    seed_people()
    lists = invitation_lists(TODAY)
    assert emails_of(lists[("Faculty", "initial")]) == ["marie@example.edu"]
    assert emails_of(lists[("Faculty", "followup")]) == ["emmy@example.edu"]
    assert emails_of(lists[("Faculty", "noPermissions")]) == ["max@example.edu"]
    assert emails_of(lists[("Faculty", "reconsent")]) == ["rosalind@example.edu"]
    assert emails_of(lists[("Others", "initial")]) == ["ada@example.edu"]
    assert emails_of(lists[("Students", "initial")]) == ["jane@example.edu"]
    everyone = {e for invitees in lists.values() for e in emails_of(invitees)}
    assert not everyone & {"grace@example.edu", "lise@example.edu", "fay@example.edu"}
    assert len(lists) == 4 * 4  # Students, Faculty, Postdocs, Others × four types


def test_the_emails_tab_shows_sizes_how_chosen_and_last_batch(app, client):
    seed_people()
    sign_in(client)
    page = client.get("/admin/emails").text
    assert page.count("<details>") == 16
    assert "never sent an invitation" in page  # how the list was chosen
    assert "job title contains" in page
    assert "Noether, Emmy Amalie &lt;emmy@example.edu&gt;" in page
    assert "Never sent" in page
    assert page.count('name="csrf_token"') >= 16


def invitation_template(mark: str) -> None:
    db.session.add(EmailTemplate(label="initial", template=f"<p>Dear {{{{givenName}}}}, {mark} from {{{{sender}}}} "
                                 "<a href=\"{{OAUTH_REDIRECT_URI}}\">sign in</a></p>", lastUpdated=NOW))  # fmt: skip
    db.session.commit()


def wait_for(batch_id: int, timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        db.session.rollback()  # a fresh transaction sees the worker's commits (MariaDB's repeatable read)
        status = invitations.batch_status(batch_id)
        if status["status"] != "running":
            return status
        time.sleep(0.1)
    raise AssertionError("batch did not finish")


def test_test_only_sends_one_email_to_ir_email(mail_app):
    app, mailbox = mail_app
    seed_people()
    client = app.test_client()
    sign_in(client, name="Ada Lovelace")
    token = token_from(client.get("/admin/emails").text)
    response = client.post("/admin/emails/send", data={"csrf_token": token, "group": "Faculty",
                                                       "invite_type": "followup", "test": "1"})  # fmt: skip
    assert response.status_code == 302
    assert len(mailbox.messages) == 1
    sender, recipients, message = mailbox.messages[0]
    assert recipients == ["repository@example.edu"]
    assert message["Subject"] == "[Test] Reminder: ORCID at TU"
    html = message.get_body(("html",)).get_content()
    assert "Dear Emmy," in html and "Ada<br>" in html
    assert "emmy@example.edu" not in recipients
    assert invitations.sent_invitations_for("repository@example.edu") == []  # a test is not recorded
    assert "Test followup email for Faculty sent to repository@example.edu" in client.get("/admin/emails").text


def test_send_batch_delivers_records_and_shows_the_last_batch(mail_app):
    app, mailbox = mail_app
    seed_people()
    add_person(11, "Bell Burnell, Jocelyn", "jocelyn@example.edu", "Associate Professor")
    db.session.commit()
    invitation_template("an invitation")
    client = app.test_client()
    sign_in(client, name="Ada King Lovelace")
    token = token_from(client.get("/admin/emails").text)
    started = time.monotonic()
    response = client.post("/admin/emails/send", data={"csrf_token": token, "group": "Faculty",
                                                       "invite_type": "initial", "send": "1"})  # fmt: skip
    assert response.status_code == 302
    page = client.get("/admin/emails").text
    assert "Sending 2 initial emails to Faculty" in page
    batch_id = db.session.execute(select(func.max(EmailBatch.batchID))).scalar()
    status = wait_for(batch_id)
    elapsed = time.monotonic() - started
    assert status["status"] == "finished" and (status["sent"], status["failed"], status["total"]) == (2, 0, 2)
    assert elapsed >= settings_of(app).EMAIL_SEND_DELAY  # paused between the two emails

    assert sorted(r for _, rs, _ in mailbox.messages for r in rs if r != "repository@example.edu") == [
        "jocelyn@example.edu",
        "marie@example.edu",
    ]
    _, recipients, message = next(m for m in mailbox.messages if "marie@example.edu" in m[1])
    assert message["From"] == "TU Repository <repository@example.edu>"
    assert message["To"] == "marie@example.edu" and message["Cc"] == "repository@example.edu"
    assert "repository@example.edu" in recipients  # CC delivered
    assert message["Subject"] == "ORCID at TU"
    html = message.get_body(("html",)).get_content()
    assert "Dear Marie, an invitation from Ada" in html and 'href="http://localhost:5000/orcid"' in html
    text = message.get_body(("plain",)).get_content()
    assert "sign in (http://localhost:5000/orcid)" in text

    sent = invitations.sent_invitations_for("marie@example.edu")
    assert sent == [(TODAY.date().isoformat(), "initial")]
    db.session.rollback()
    batch = db.session.get(EmailBatch, batch_id)
    assert batch.runLock is None and batch.finished is not None and batch.sentBy == "admin@example.edu"
    page = client.get("/admin/emails").text
    assert "Last batch" in page and "2 sent" in page
    # Marie and Jocelyn now wait for a follow-up.
    followup = invitation_lists(datetime.now())[("Faculty", "followup")]
    assert sorted(emails_of(followup)) == ["emmy@example.edu", "jocelyn@example.edu", "marie@example.edu"]


def test_a_second_batch_is_refused_while_one_runs(app, client):
    seed_people()
    settings = settings_of(app)
    batch, invitees = start_batch(settings, "Faculty", "initial", "a@example.edu", TODAY)
    with pytest.raises(BatchRunning) as refused:
        start_batch(settings, "Faculty", "followup", "b@example.edu", TODAY)
    assert refused.value.batch.batchID == batch.batchID
    sign_in(client)
    token = token_from(client.get("/admin/emails").text)
    page = client.post("/admin/emails/send", data={"csrf_token": token, "group": "Faculty",
                                                   "invite_type": "noPermissions", "send": "1"},
                       follow_redirects=True).text  # fmt: skip
    assert "Another batch is being sent (Faculty initial, started by a@example.edu)" in page
    assert 'id="batch-progress"' in page and "Batch in progress: Faculty · initial" in page
    assert db.session.execute(select(func.count()).select_from(EmailBatch)).scalar() == 1


def test_concurrent_double_clicks_start_one_batch(mail_app):
    app, mailbox = mail_app
    seed_people()
    settings = settings_of(app)
    outcomes = []

    def click():
        with app.app_context():
            try:
                start_batch(settings, "Faculty", "initial", "a@example.edu", TODAY)
                outcomes.append("started")
            except BatchRunning:
                outcomes.append("refused")
            finally:
                db.session.remove()

    threads = [threading.Thread(target=click) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["refused", "refused", "refused", "started"]


def test_a_rerun_the_same_day_skips_people_already_sent_and_pauses_between_emails(mail_app):
    app, mailbox = mail_app
    seed_people()
    settings = settings_of(app)
    pauses: list[float] = []
    batch, invitees = start_batch(settings, "Faculty", "initial", "a@example.edu", TODAY)
    twice = invitees + [Invitee("12", "Sabin, Florence", "florence@example.edu", "Faculty")]
    done = run_batch(settings, batch.batchID, twice, "Ada", sleep=pauses.append)
    assert (done.sent, done.skipped, done.failed) == (2, 0, 0)
    assert pauses == [settings.EMAIL_SEND_DELAY]  # between emails, not before the first
    # The same list again (a stale page, a restarted batch): the lists moved on, the batch row is made by hand.
    again = EmailBatch(groupLabel="Faculty", inviteType="initial", sentBy="b@example.edu", started=TODAY,
                       status="running", total=2, sent=0, skipped=0, failed=0, runLock="send")  # fmt: skip
    db.session.add(again)
    db.session.commit()
    done = run_batch(settings, again.batchID, twice, "Ada", sleep=pauses.append)
    assert (done.sent, done.skipped) == (0, 2)
    assert len(mailbox.messages) == 2


def test_an_unreachable_mail_server_counts_failures_and_releases_the_lock(app):
    seed_people()
    settings = settings_of(app)  # SMTP port 1: nothing listens
    batch, invitees = start_batch(settings, "Faculty", "initial", "a@example.edu", TODAY)
    done = run_batch(settings, batch.batchID, invitees, "Ada", sleep=lambda s: None)
    assert (done.status, done.sent, done.failed, done.runLock) == ("finished", 0, 1, None)
    assert "marie@example.edu" in done.lastError
    assert invitations.sent_invitations_for("marie@example.edu") == []
    start_batch(settings, "Faculty", "initial", "a@example.edu", TODAY)  # the lock is free again


def test_a_batch_whose_process_died_does_not_block_for_ever(app):
    seed_people()
    settings = settings_of(app)
    start_batch(settings, "Faculty", "initial", "a@example.edu", TODAY - timedelta(hours=2))
    batch, _ = start_batch(settings, "Faculty", "initial", "b@example.edu", TODAY)
    statuses = db.session.execute(select(EmailBatch.status).order_by(EmailBatch.batchID)).scalars().all()
    assert statuses == ["abandoned", "running"]


def test_sending_to_nobody_or_an_unknown_list_is_refused(app, client):
    sign_in(client)
    token = token_from(client.get("/admin/emails").text)
    page = client.post("/admin/emails/send", data={"csrf_token": token, "group": "Faculty", "invite_type": "initial",
                                                   "send": "1"}, follow_redirects=True).text  # fmt: skip
    assert "Nothing sent: nobody is on this list." in page
    page = client.post("/admin/emails/send", data={"csrf_token": token, "group": "Faculty", "invite_type": "spam",
                                                   "send": "1"}, follow_redirects=True).text  # fmt: skip
    assert "nothing was sent" in page
    assert db.session.execute(select(func.count()).select_from(EmailBatch)).scalar() == 0


def test_batch_status_is_json_for_the_progress_display(app, client):
    seed_people()
    batch, _ = start_batch(settings_of(app), "Faculty", "initial", "a@example.edu", TODAY)
    sign_in(client)
    status = client.get(f"/admin/emails/batches/{batch.batchID}").get_json()
    assert status == {"id": batch.batchID, "group": "Faculty", "type": "initial", "status": "running", "total": 1,
                      "sent": 0, "skipped": 0, "failed": 0, "done": 0, "lastError": None}  # fmt: skip


def test_templates_are_edited_with_a_sandboxed_preview_and_versions_kept(app, client):
    sign_in(client, name="Ada Lovelace")
    page = client.get("/admin/emails/templates/initial")
    assert page.status_code == 200
    assert "{{givenName}}" in page.text  # the template text, in the textarea
    assert '<iframe class="email-preview" sandbox="" srcdoc="' in page.text
    assert "Dear Jane," in page.text  # the preview has sample values
    token = token_from(page.text)
    evil = '<p>Hi {{givenName}}</p><script>alert("x")</script><img src=x onerror="alert(1)">'
    preview = client.post("/admin/emails/templates/initial", data={"csrf_token": token, "template": evil,
                                                                   "preview": "1"})  # fmt: skip
    assert preview.status_code == 200
    assert "<script>alert" not in preview.text and 'onerror="alert' not in preview.text  # only escaped
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in preview.text
    assert "not saved yet" in preview.text
    count = db.session.execute(select(func.count()).where(EmailTemplate.label == "initial")).scalar()
    assert count == 1
    form = {"csrf_token": token, "template": "<p>New {{sender}}</p>", "save": "1"}
    saved = client.post("/admin/emails/templates/initial", data=form, follow_redirects=True)
    assert "Template “initial” saved" in saved.text
    assert invitations.get_template("initial") == "<p>New {{sender}}</p>"
    assert db.session.execute(select(func.count()).where(EmailTemplate.label == "initial")).scalar() == 2
    assert client.get("/admin/emails/templates/nonsense").status_code == 404
    reconsent = client.get("/admin/emails/templates/reconsent").text
    assert "grant permission again" in reconsent


def test_placeholders_are_filled_and_escaped():
    values = {"givenName": "<b>Zoë</b>", "sender": "Ada"}
    assert invitations.render("Dear {{givenName}} from {{sender}} {{unknown}}", values) == (
        "Dear &lt;b&gt;Zoë&lt;/b&gt; from Ada {{unknown}}"
    )
    assert invitations.first_given_name("Noether, Emmy Amalie") == "Emmy"
    assert invitations.first_given_name("Ada King Lovelace") == "Ada"


def test_emails_tab_screenshot(app, client):
    seed_people()
    sign_in(client)
    batch, _ = start_batch(settings_of(app), "Faculty", "followup", "admin@example.edu", TODAY)
    client.get("/admin/emails")
    cookie = client.get_cookie("session").value
    with BackgroundServer(app) as server, browser_or_skip(1400, 900) as driver:
        driver.get(f"{server.url}/static/css/ioi.css")
        driver.add_cookie({"name": "session", "value": cookie, "path": "/"})
        driver.get(f"{server.url}/admin/emails")
        assert "Send Emails" in driver.title
        driver.execute_script("document.querySelector('details').open = true")
        errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE" and "favicon" not in e["message"]]
        assert not errors, errors
        path = screenshot(driver, "admin-emails")
        assert path.stat().st_size > 10000
        driver.get(f"{server.url}/admin/emails/templates/noPermissions")
        screenshot(driver, "admin-email-template")


def test_the_emails_tab_follows_a_running_batch_until_it_ends(mail_app):
    app, mailbox = mail_app
    seed_people()
    for pid in range(20, 23):
        add_person(pid, f"Person, Number{pid}", f"n{pid}@example.edu", "Professor")
    db.session.commit()
    client = app.test_client()
    sign_in(client)
    client.get("/admin/emails")
    cookie = client.get_cookie("session").value
    settings = settings_of(app)
    batch, invitees = start_batch(settings, "Faculty", "initial", "admin@example.edu", TODAY)
    with BackgroundServer(app) as server, browser_or_skip(1400, 900) as driver:
        driver.get(f"{server.url}/static/css/ioi.css")
        driver.add_cookie({"name": "session", "value": cookie, "path": "/"})
        driver.get(f"{server.url}/admin/emails")
        assert driver.find_element("id", "batch-progress")
        worker = threading.Thread(target=invitations.run_in_app, args=(app, settings, batch.batchID, invitees, "Ada"))
        worker.start()
        deadline = time.monotonic() + 30
        seen = set()
        while time.monotonic() < deadline:
            try:
                seen.add(driver.find_element("css selector", '[data-field="sent"]').text)
            except Exception:  # the page reloaded without the panel: the batch is over
                break
            time.sleep(0.2)
        worker.join(timeout=30)
        assert len(seen) >= 2, f"the counts moved while the batch ran: {seen}"
        driver.implicitly_wait(5)
        assert "Last batch" in driver.find_element("css selector", "table.invitations").text
        assert "4 sent" in driver.page_source
    assert len(mailbox.messages) == 4

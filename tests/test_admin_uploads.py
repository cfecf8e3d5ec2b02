"""Upload Files: the four CSV kinds, encodings, dates, all-or-nothing, names kept, reports, the page."""

from __future__ import annotations

import io

import pytest
import sqlalchemy as sa
from test_admin_helpers import NOW, sign_in, token_from

from ioi.extensions import db
from ioi.models import Message, Metadata
from ioi.services import uploads
from ioi.services.metadata_store import flatten, read_record
from ioi.services.people import read_person
from ioi.services.uploads import UploadError, import_file, parse_date

PERSONS = "PERSON_ID,LAST_NAME,FIRST_NAME,MIDDLE_NAME,LOCAL_PERSON_ID,EMAIL\r\n"
RELATIONS = "PERSON_ID,ORG_ID,JOB_TITLE,START_DATE,END_DATE\n"
ORGS = "Organisation_ID,Name,Type,Start_Date,End_Date\n"
HIERARCHY = "Parent_Organisation_ID,Child_Organisation_ID\n"


def snapshot() -> list:
    """Every row of the tables an upload may touch."""
    rows = []
    for model in (Metadata, Message):
        rows += [tuple(r) for r in db.session.execute(sa.select(model.__table__)).all()]
    return sorted(rows, key=repr)


def load(kind: str, text: str | bytes, name: str = "file.csv"):
    data = text.encode("utf-8") if isinstance(text, str) else text
    return import_file(kind, name, data, NOW)


def seed_people() -> None:
    result = load("persons", PERSONS + "1001,Curie,Marie,Salomea,123456,Marie.Curie@Example.edu\r\n"
                  "1002,Noether,Emmy,,20231234567,emmy@example.edu\r\n")  # fmt: skip
    assert result.applied, result.errors


# --- dates ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, order, expected",
    [
        ("2019-10-01", None, "2019-10-01"),
        ("2019-10-01 00:00:00", None, "2019-10-01"),  # as Excel writes it
        ("2019-10-01T08:30", None, "2019-10-01"),
        ("2019/10/1", None, "2019-10-01"),
        ("20191001", None, "2019-10-01"),
        ("01.10.2019", None, "2019-10-01"),
        ("25/12/2019", None, "2019-12-25"),  # only one reading
        ("12/25/2019", None, "2019-12-25"),
        ("03/04/2020", "dmy", "2020-04-03"),
        ("03/04/2020", "mdy", "2020-03-04"),
        ("05/05/2020", None, "2020-05-05"),  # the same either way
        ("  ", None, None),
    ],
)
def test_common_date_formats_are_read(text, order, expected):
    assert parse_date(text, order) == expected


@pytest.mark.parametrize(
    "text, reason",
    [
        ("03/04/2020", "ambiguous date"),
        ("2021-02-30", "no such date"),
        ("1 May 2020", "unrecognised date"),
        ("0201-01-01", "implausible"),
        ("13/13/2020", "no such date"),
    ],
)
def test_bad_dates_are_refused_with_a_reason(text, reason):
    with pytest.raises(ValueError, match=reason):
        parse_date(text)


# --- persons ----------------------------------------------------------------------------------


def test_persons_are_created_then_unchanged_then_updated(app):
    seed_people()
    marie = flatten(read_record("local", "person_1001"))
    assert marie == {
        "local.person.name": ["Curie, Marie Salomea"],
        "local.person.id": ["1001"],
        "local.person.email": ["marie.curie@example.edu"],
        "local.person.personnelNumber": ["123456"],
    }
    assert flatten(read_record("local", "person_1002"))["local.person.studentNumber"] == ["20231234567"]
    again = load("persons", PERSONS + "1001,Curie,Marie,Salomea,123456,marie.curie@example.edu\r\n"
                 "1002,Noether,Emmy,,20231234567,emmy@example.edu\r\n")  # fmt: skip
    assert again.summary() == {"new": 0, "updated": 0, "deleted": 0, "unchanged": 2, "skipped": 0}
    changed = load("persons", PERSONS + "1001,Curie,Maria,,123456,marie@example.edu\r\n")
    assert changed.summary()["updated"] == 1
    marie = flatten(read_record("local", "person_1001"))
    assert marie["local.person.name"] == ["Curie, Marie Salomea"]  # a name once set is never overwritten
    assert marie["local.person.email"] == ["marie@example.edu"]
    assert "1 names already set were kept" in changed.notes[0]


def test_an_uploaded_person_keeps_positions_added_since(app):
    seed_people()
    assert load("relations", RELATIONS + "1001,500,Professor,2020-09-01,\n").applied
    assert load("persons", PERSONS + "1001,Curie,Marie,Salomea,123456,marie@example.edu\r\n").applied
    person = read_person("1001")
    assert [p.title for p in person.positions] == ["Professor"]


def test_the_summary_is_saved_as_a_task_report(app):
    seed_people()
    rows = db.session.execute(sa.select(Message.type, Message.message).where(Message.process == "uploadPersonsData"))
    messages = dict(rows.all())
    assert "- 2 new items" in messages["summary"] and "- 0 errors" in messages["summary"]
    assert "Persons Data upload: file.csv (UTF-8, 2 rows)" in messages["report"]


def test_utf8_with_bom_and_windows_1252_are_read(app):
    bom = ("\ufeff" + PERSONS + "1,Müller,Zoë,,,zoe@example.edu\r\n").encode("utf-8")
    assert load("persons", bom).applied
    cp1252 = (PERSONS + "2,Núñez,José,,,jose@example.edu\r\n").encode("cp1252")
    result = load("persons", cp1252)
    assert result.applied
    assert flatten(read_record("local", "person_1"))["local.person.name"] == ["Müller, Zoë"]
    assert flatten(read_record("local", "person_2"))["local.person.name"] == ["Núñez, José"]
    report = db.session.execute(sa.select(Message.message).where(Message.type == "report").order_by(Message.messageID))
    assert "(Windows-1252, 1 rows)" in report.scalars().all()[-1]


def test_headers_ignore_case_and_spaces_and_semicolons_work(app):
    header = "person_id; Last_Name ;first_name;MIDDLE_NAME;local_person_id;Email\n"
    assert load("persons", header + "7;Hopper;Grace;;;grace@example.edu\n").applied
    assert flatten(read_record("local", "person_7"))["local.person.email"] == ["grace@example.edu"]


def test_a_word_for_word_repeated_row_is_skipped(app):
    result = load("persons", PERSONS + "1,A,B,,,a@example.edu\n1,A,B,,,a@example.edu\n")
    assert result.summary()["skipped"] == 1 and result.summary()["new"] == 1


# --- every error leaves the database unchanged ------------------------------------------------

BAD_FILES = [
    ("persons", b"", "The file is empty"),
    ("persons", b"   \r\n", "The file is empty"),
    ("persons", PERSONS.encode(), "no data rows"),
    ("persons", b"PK\x03\x04 excel bytes", "not a CSV text file"),
    ("persons", PERSONS.encode() + b"1,\x81\xff,B,,,a@example.edu\n", "neither UTF-8 nor Windows-1252"),
    ("persons", b"PERSON_ID,FIRST_NAME,LAST_NAME,MIDDLE_NAME,LOCAL_PERSON_ID,EMAIL\n1,A,B,,,a@example.edu\n",
     "expected PERSON_ID, LAST_NAME, FIRST_NAME"),
    ("persons", b"PERSON_ID,LAST_NAME,FIRST_NAME,MIDDLE_NAME,LOCAL_PERSON_ID\n1,A,B,,\n", "(5 columns)"),
    ("relations", PERSONS.encode() + b"1,A,B,,,a@example.edu\n", "does not match Person Organisation Relations"),
    ("relations", (RELATIONS + "1001,5,Prof,25/12/2020,\n1001,5,Prof,2020-01-01,12/25/2021\n").encode(),
     "both as DD/MM/YYYY (line 2) and as MM/DD/YYYY (line 3)"),
    ("nonsense", PERSONS.encode(), "Choose what kind of file"),
]  # fmt: skip


@pytest.mark.parametrize("kind, data, message", BAD_FILES)
def test_an_unreadable_file_changes_nothing_and_says_why(app, kind, data, message):
    seed_people()
    before = snapshot()
    with pytest.raises(UploadError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load(kind, data)
    assert snapshot() == before


def test_a_file_over_the_size_limit_is_refused(app, monkeypatch):
    monkeypatch.setattr(uploads, "MAX_UPLOAD_BYTES", 1024 * 1024)
    before = snapshot()
    with pytest.raises(UploadError, match=r"The file is 1\.0 MB; the limit is 1 MB"):
        load("persons", PERSONS + "1,A,B,,,a@example.edu\n" * 50000)
    assert snapshot() == before


BAD_ROWS = [
    ("persons", PERSONS + "1,A,B,,,a@example.edu\n2,C,D,,\n", 3, "expected 6 values, found 5"),
    ("persons", PERSONS + ",A,B,,,a@example.edu\n", 2, "PERSON_ID is empty"),
    ("persons", PERSONS + "1 2,A,B,,,a@example.edu\n", 2, "PERSON_ID '1 2' is not an identifier"),
    ("persons", PERSONS + "1,,B,,,a@example.edu\n", 2, "LAST_NAME is empty"),
    ("persons", PERSONS + "1,A,B,,,not-an-address\n", 2, "EMAIL 'not-an-address' is not an email address"),
    ("persons", PERSONS + "1,A,B,,12x,a@example.edu\n", 2, "LOCAL_PERSON_ID '12x' is not a number"),
    ("persons", PERSONS + "1,A,B,,,a@example.edu\n1,A,C,,,a@example.edu\n", 3, "PERSON_ID 1 is already on line 2"),
    ("persons", PERSONS + '1,"A,B,,,a@example.edu\n', 2, "expected 6 values"),
    ("relations", RELATIONS + "9999,5,Prof,2020-01-01,\n", 2, "person 9999 is not known: upload Persons Data first"),
    ("relations", RELATIONS + "1001,5,Prof,03/04/2020,\n", 2, "ambiguous date '03/04/2020'"),
    ("relations", RELATIONS + "1001,5,Prof,2020-01-01,2019-01-01\n", 2, "END_DATE 2019-01-01 is before START_DATE"),
    ("relations", RELATIONS + "1001,5,Prof,,\n", 2, "START_DATE is empty"),
    ("relations", RELATIONS + "1001,,Prof,2020-01-01,\n", 2, "ORG_ID is empty"),
    ("relations", RELATIONS + "1001,5,Prof,2020-02-30,\n", 2, "no such date '2020-02-30'"),
    ("relations", RELATIONS + "1001,5,Prof,2020-01-01,\n1001,6,Prof,2020-01-01,\n", 3,
     "the relation of person 1001 starting 2020-01-01 is already on line 2"),
    ("orgData", ORGS + "10,,division,,\n", 2, "Name is empty"),
    ("orgData", ORGS + "10,Biology,division,2020-13-01,\n", 2, "no such date"),
    ("orgHierarchy", HIERARCHY + "10,10\n", 2, "an organisation cannot be its own parent"),
    ("orgHierarchy", HIERARCHY + "10,11\n12,11\n", 3, "organisation 11 is already on line 2"),
]  # fmt: skip


@pytest.mark.parametrize("kind, text, line, message", BAD_ROWS)
def test_a_bad_row_is_reported_with_its_line_and_nothing_changes(app, kind, text, line, message):
    seed_people()
    before = snapshot()
    result = load(kind, text)
    assert not result.applied
    assert [(e.line, message in e.message) for e in result.errors] == [(line, True)], result.errors
    assert snapshot() == before


def test_a_bad_row_after_many_good_ones_undoes_the_whole_file(app, monkeypatch):
    monkeypatch.setattr(uploads, "CHUNK", 2)  # the good rows are written in earlier chunks, then rolled back
    seed_people()
    before = snapshot()
    good = "".join(f"{n},Person,{n},,,p{n}@example.edu\n" for n in range(1, 8))
    result = load("persons", PERSONS + good + "8,Person,8,,,broken\n")
    assert not result.applied and result.errors[0].line == 9
    assert snapshot() == before


def test_every_bad_row_is_reported_not_only_the_first(app):
    text = PERSONS + "".join(f"{n},A,B,,,bad{n}\n" for n in range(1, 301))
    result = load("persons", text)
    assert result.error_count == 300 and len(result.errors) == uploads.MAX_REPORTED_ERRORS
    assert result.errors[0].line == 2


# --- relations and organisations --------------------------------------------------------------


def test_relations_are_matched_by_person_and_start_date(app):
    seed_people()
    first = load("relations", RELATIONS + "1001,500,Professor,2020-09-01,\n1001,501,,01/02/2015,25/08/2020\n")
    assert first.summary() == {"new": 2, "updated": 0, "deleted": 0, "unchanged": 0, "skipped": 0}
    assert first.notes == ["Slashed dates read as DD/MM/YYYY."]
    again = load("relations", RELATIONS + "1001,500,Professor,2020-09-01,\n")
    assert again.summary()["unchanged"] == 1

    later = load("relations", RELATIONS + "1001,502,Dean,2020-09-01,2026-06-30\n1001,501,Lecturer,2015-02-01,\n")
    assert later.summary() == {"new": 0, "updated": 2, "deleted": 1, "unchanged": 0, "skipped": 0}
    positions = {p.start_date: p for p in read_person("1001").positions}
    assert set(positions) == {"2020-09-01", "2015-02-01"}
    professor = positions["2020-09-01"]
    assert (professor.org_id, professor.title, professor.end_date) == ("502", "Professor", "2026-06-30")
    assert professor.relation_id == "1001_500_2020-09-01"  # the affiliation keeps its id (put-codes refer to it)
    lecturer = positions["2015-02-01"]
    assert (lecturer.org_id, lecturer.title, lecturer.end_date) == ("501", "Lecturer", None)  # title filled in


def test_organisations_and_hierarchy_give_department_names(app):
    seed_people()
    assert load("orgData", ORGS + "1,Science Division,division,2010-01-01,\n2,Biology,program,,\n"
                "3,Genomics Lab,lab,2019-10-01 00:00:00,\n").applied  # fmt: skip
    hierarchy = load("orgHierarchy", HIERARCHY + "1,3\n1,2\n")
    assert hierarchy.summary()["updated"] == 2
    again = load("orgData", ORGS + "3,Genomics Laboratory,lab,20191001,\n")  # keeps the parent
    assert again.summary()["updated"] == 1
    assert load("relations", RELATIONS + "1001,3,Professor,2020-01-01,\n1002,2,PhD Student,2021-01-01,\n").applied
    departments = {p.org_id: p.org.department_name for pid in ("1001", "1002") for p in read_person(pid).positions}
    assert departments == {"3": "Science Division (Genomics Laboratory)", "2": "Biology"}
    org = flatten(read_record("local", "org_3"))
    assert org == {"local.org.id": ["3"], "local.org.name": ["Genomics Laboratory"], "local.org.type": ["lab"],
                   "local.org.parent": ["1"], "local.date.start": ["2019-10-01"]}  # fmt: skip


# --- the page ---------------------------------------------------------------------------------


def post_file(client, kind: str, text: str | bytes, name: str = "hr.csv"):
    token = token_from(client.get("/admin/upload").text)
    data = text.encode() if isinstance(text, str) else text
    return client.post(
        "/admin/upload",
        data={"csrf_token": token, "kind": kind, "file": (io.BytesIO(data), name)},
        content_type="multipart/form-data",
    )


def test_the_upload_page_applies_a_file_and_shows_the_summary(app, client):
    sign_in(client)
    page = post_file(client, "persons", PERSONS + "1,A,B,,,a@example.edu\n")
    assert page.status_code == 200
    assert "Persons Data: hr.csv applied" in page.text
    assert "Saved as a task report (uploadPersonsData)" in page.text


def test_the_upload_page_lists_bad_rows_and_changes_nothing(app, client):
    sign_in(client)
    before = snapshot()
    page = post_file(client, "persons", PERSONS + "1,A,B,,,a@example.edu\n<b>2</b>,A,B,,,x\n")
    assert "was not applied" in page.text and "nothing was\n       changed" in page.text
    assert "PERSON_ID &#39;&lt;b&gt;2&lt;/b&gt;&#39; is not an identifier" in page.text  # escaped
    assert '<td class="num">3</td>' in page.text
    assert snapshot() == before


def test_the_upload_page_explains_unreadable_files_and_missing_choices(app, client):
    sign_in(client)
    page = post_file(client, "relations", PERSONS + "1,A,B,,,a@example.edu\n")
    assert "The header row does not match Person Organisation Relations" in page.text
    assert "Nothing was changed." in page.text
    page = post_file(client, "", PERSONS)
    assert "Choose what kind of file this is." in page.text
    token = token_from(client.get("/admin/upload").text)
    page = client.post("/admin/upload", data={"csrf_token": token, "kind": "persons"})
    assert "Choose a CSV file." in page.text


def test_a_request_over_the_server_limit_gets_a_clear_message(migrated, app):
    from conftest import make_app

    small = make_app(migrated, MAX_CONTENT_LENGTH=2048)
    client = small.test_client()
    sign_in(client)
    with small.app_context():
        page = post_file(client, "persons", PERSONS + "1,A,B,,,a@example.edu\n" * 200)
        db.session.remove()
        db.engine.dispose()
    assert page.status_code == 413
    assert "The file is larger than the 2 KB that can be uploaded. Split it into smaller files." in page.text


def test_upload_page_in_a_browser_reports_bad_rows(app, client, tmp_path):
    from browser import browser_or_skip, screenshot

    from ioi.sandbox.server import BackgroundServer

    sign_in(client)
    client.get("/admin/upload")
    cookie = client.get_cookie("session").value
    bad = tmp_path / "persons.csv"
    bad.write_text(PERSONS + "1,Curie,Marie,,,marie@example.edu\n2,,Emmy,,,emmy@example\n3,Planck,Max,,12x,\n")
    with BackgroundServer(app) as server, browser_or_skip(1400, 900) as driver:
        driver.get(f"{server.url}/static/css/ioi.css")
        driver.add_cookie({"name": "session", "value": cookie, "path": "/"})
        driver.get(f"{server.url}/admin/upload")
        driver.find_element("css selector", "select#kind option[value='persons']").click()
        driver.find_element("id", "file").send_keys(str(bad))
        driver.find_element("id", "upload").click()
        text = driver.find_element("css selector", ".result-errors").text
        assert "was not applied" in text and "LAST_NAME is empty" in text and "12x" in text
        screenshot(driver, "admin-upload-errors")

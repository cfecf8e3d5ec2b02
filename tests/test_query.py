"""The campus query API at /query and /query.php: parameters, outputs, errors, access control, bulk export."""

from __future__ import annotations

import csv
import io
import json
import shlex
import tracemalloc
from collections.abc import Generator
from urllib.parse import parse_qs, urlsplit

import pytest
import sqlalchemy as sa
from test_query_works import JANE, T0, add_person, add_works, author, item

from ioi.extensions import db
from ioi.models import Orcid
from ioi.query import example_curl, views
from ioi.query.formats import bibtex, csv_lines, csv_text, safe_cell
from ioi.services.metadata_store import write_record, write_records
from ioi.services.works import Work

KEY = "test-query-key-0123456789"
OTHER_KEY = "second-key-abcdefghijkl"
AUTH = {"Authorization": f"Bearer {KEY}"}
WORK_COLUMNS = ["Type", "Title", "Authors", "Journal", "DOI", "Handle", "Publication Date", "Bibtex"]


@pytest.fixture
def api(query_app):
    """The test client of an app with two API keys."""
    return query_app(QUERY_API_KEYS=f"{KEY}, {OTHER_KEY}").test_client()


@pytest.fixture
def jane(app):
    """Person 123456 with an ORCID iD and three works; a name-only namesake work that must not show."""
    add_person(123456, "Smith, Jane", JANE, orcid_name="Jane Smith")
    add_works(3)
    write_record("dspace", "10754/99", item("10754/99", "Namesake", [author("Smith, Jane")]), T0)
    db.session.commit()
    return "123456"


def get(client, path="/query", headers=AUTH, **params):
    return client.get(path, query_string=params, headers=headers)


def csv_rows(response) -> list[list[str]]:
    return list(csv.reader(io.StringIO(response.get_data(as_text=True), newline="")))


# --- outputs ------------------------------------------------------------------------------------


def test_orcid_as_json_and_csv(api, jane):
    response = get(api, tuid=jane, request="orcid", response="json")
    assert response.status_code == 200 and response.mimetype == "application/json"
    assert response.get_json() == {"TU ID": "123456", "Full Name": "Smith, Jane", "ORCID": JANE}
    response = get(api, tuid=jane, request="orcid", response="csv")
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert response.get_data() == f'TU ID,Full Name,ORCID\r\n123456,"Smith, Jane",{JANE}\r\n'.encode()
    assert response.headers["Cache-Control"] == "no-store"


def test_works_by_orcid_as_json(api, jane):
    response = get(api, tuid=jane, request="works", response="json")
    works = response.get_json()
    assert response.status_code == 200
    assert [w["Title"] for w in works] == ["Work 0", "Work 1", "Work 2"]  # newest first; no namesake
    first = works[0]
    assert list(first) == WORK_COLUMNS
    assert first["Authors"] == "Smith, Jane||Doe, John"
    assert (first["Type"], first["Journal"], first["DOI"]) == ("Article", "Journal of Reefs", "10.1000/10754.0")
    assert (first["Handle"], first["Publication Date"]) == ("http://hdl.handle.net/10754/0", "2019-01-15")
    assert first["Bibtex"].startswith(
        "@article{tu_10754_0,\n  title = {Work 0},\n  author = {Smith, Jane and Doe, John}"
    )


def test_works_by_name_when_the_person_has_no_orcid(api, app):
    add_person(555, "Roe, Rick")
    write_records(
        "dspace",
        {
            "10754/1": item("10754/1", "Mine", [author("Roe, Rick"), author("Doe, John")]),
            "10754/2": item("10754/2", "Not mine", [author("Roe, Richard")]),
        },
        T0,
    )
    db.session.commit()
    works = get(api, tuid="555", request="works").get_json()  # response defaults to json
    assert [w["Title"] for w in works] == ["Mine"]


def test_repeated_values_are_joined_with_double_bars(api, app):
    add_person(1, "Smith, Jane", JANE)
    record = item("10754/1", "Main", [author("Smith, Jane", "k", JANE), author("Doe, John"), author("Roe, Rick")])
    record.update(
        {"dc.title": ["Main", "Alt"], "dc.type": ["Article", "Preprint"], "dc.identifier.doi": ["10.1/a", "10.1/b"]}
    )
    write_record("dspace", "10754/1", record, T0)
    db.session.commit()
    (work,) = get(api, tuid="1", request="works").get_json()
    assert work["Title"] == "Main||Alt" and work["Type"] == "Article||Preprint" and work["DOI"] == "10.1/a||10.1/b"
    assert work["Authors"] == "Smith, Jane||Doe, John||Roe, Rick"


def test_works_as_csv(api, jane):
    response = get(api, tuid=jane, request="works", response="csv")
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert response.headers["Content-Disposition"] == 'attachment; filename="works-123456.csv"'
    rows = csv_rows(response)
    assert rows[0] == WORK_COLUMNS
    assert len(rows) == 4
    assert rows[1][:7] == [
        "Article",
        "Work 0",
        "Smith, Jane||Doe, John",
        "Journal of Reefs",
        "10.1000/10754.0",
        "http://hdl.handle.net/10754/0",
        "2019-01-15",
    ]
    assert rows[1][7].startswith("'@article{tu_10754_0,")  # a leading @ is neutralised for spreadsheets


def test_year_filter(api, jane):
    assert [w["Title"] for w in get(api, tuid=jane, request="works", year="2018").get_json()] == ["Work 1"]
    assert get(api, tuid=jane, request="works", year="all").get_json() != []
    assert get(api, tuid=jane, request="works", year="1990").get_json() == []
    empty = get(api, tuid=jane, request="works", year="1990", response="csv")
    assert empty.status_code == 200 and csv_rows(empty) == [WORK_COLUMNS]


def test_legacy_path_answers_the_same(api, jane):
    for request in ("orcid", "works"):
        new = get(api, tuid=jane, request=request)
        old = get(api, "/query.php", tuid=jane, request=request)
        assert (old.status_code, old.get_data()) == (new.status_code, new.get_data())
    assert api.post("/query.php", headers=AUTH, data={"tuid": jane}).status_code == 405


def test_id_parameter_follows_the_abbreviation_and_the_id_pattern(query_app):
    add_person(12345678, "Smith, Jane", JANE)
    client = query_app(QUERY_API_KEYS=KEY, INSTITUTION_ABBREVIATION="KAUST").test_client()
    response = get(client, kaustid="12345678", request="orcid")
    assert response.get_json() == {"KAUST ID": "12345678", "Full Name": "Smith, Jane", "ORCID": JANE}
    assert get(client, tuid="12345678", request="orcid").status_code == 400
    add_person(7, "Doe, John")
    write_record("local", "person_ab-12", {"local.person.name": ["Roe, Rick"]}, T0)
    db.session.commit()
    strict = query_app(QUERY_API_KEYS=KEY, QUERY_ID_PATTERN=r"[a-z]{2}-\d+").test_client()
    assert get(strict, tuid="7", request="works").status_code == 400
    assert get(strict, tuid="ab-12", request="works").get_json() == []


# --- errors -------------------------------------------------------------------------------------

BAD_RESPONSE = "Invalid response type: use response=json or response=csv."
BAD_REQUEST = "Invalid request type: use request=orcid or request=works."
BAD_ID = "Invalid id: give tuid=<person id> or tuid=all."
BAD_YEAR = "Invalid year: use year=all or a four-digit year."
ERRORS = [
    ({"tuid": "123456", "request": "works", "response": "xml"}, 400, BAD_RESPONSE),
    ({"tuid": "123456", "request": "works", "response": "JSON"}, 400, BAD_RESPONSE),
    ({"tuid": "123456", "request": "names"}, 400, BAD_REQUEST),
    ({"tuid": "123456"}, 400, BAD_REQUEST),
    ({"request": "works"}, 400, BAD_ID),
    ({"tuid": "12a456", "request": "works"}, 400, BAD_ID),
    ({"tuid": "1" * 13, "request": "works"}, 400, BAD_ID),
    ({"tuid": "١٢٣", "request": "works"}, 400, BAD_ID),
    ({"tuid": "1; DROP TABLE orcids", "request": "works"}, 400, BAD_ID),
    ({"tuid": "123456", "request": "works", "year": "19"}, 400, BAD_YEAR),
    ({"tuid": "123456", "request": "works", "year": "２０１９"}, 400, BAD_YEAR),
    ({"tuid": "123456", "request": "orcid", "year": "last"}, 400, BAD_YEAR),
    ({"tuid": "all", "request": "works"}, 400, "Invalid request type: tuid=all is only available with request=orcid."),
    ({"tuid": "999999", "request": "works"}, 404, "No match found for this id."),
    ({"tuid": "999999", "request": "orcid"}, 404, "No match found for this id."),
]  # fmt: skip


@pytest.mark.parametrize(("params", "status", "message"), ERRORS)
def test_errors_are_plain_messages_with_their_status(api, jane, params, status, message):
    response = get(api, **params)
    assert response.status_code == status
    assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert response.get_data(as_text=True) == message + "\n"


def test_a_person_without_orcid_has_no_orcid_match_but_has_works(api, app):
    add_person(8, "Smith, Jane")
    assert get(api, tuid="8", request="orcid").status_code == 404
    assert get(api, tuid="8", request="works").status_code == 200


@pytest.mark.parametrize(
    "query",
    [
        "tuid=123456&request=works&tuid=999&request=orcid",  # repeated: the first value counts
        "tuid=123456&request=works&foo=bar&%00=%FF",
        "tuid=123456&request=works&year=" + "9" * 10000,
        "tuid=999999999999&request=orcid",
        "tuid=" + "1" * 100000 + "&request=works",
        "tuid=%F0%9F%A7%AC&request=%E2%80%AE&response=%FF%FE",
        "tuid=123456%00&request=works",
        "tuid[]=1&request[]=works",
        "tuid=&request=&response=&year=",
        "%=%%&&&===",
    ],
)
def test_no_input_causes_a_server_error(api, jane, query):
    response = api.get(f"/query?{query}", headers=AUTH)
    assert response.status_code in (200, 400, 404)
    assert response.mimetype in ("application/json", "text/plain")


def test_first_value_of_a_repeated_parameter_counts(api, jane):
    response = api.get("/query?tuid=123456&request=works&tuid=999&request=orcid", headers=AUTH)
    assert len(response.get_json()) == 3


# --- access control -----------------------------------------------------------------------------


def test_closed_when_no_keys_are_configured(client):
    response = client.get("/query?tuid=1&request=orcid", headers=AUTH)
    assert response.status_code == 403
    assert (
        response.get_data(as_text=True)
        == "The query API is not enabled: no API keys are configured (QUERY_API_KEYS).\n"
    )
    assert client.get("/query.php?tuid=1&request=orcid").status_code == 403


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": f"Bearer {KEY}"},
        {"Authorization": f"bearer   {OTHER_KEY}"},
        {"X-API-Key": KEY},
        {"X-API-Key": OTHER_KEY, "Authorization": "Basic dXNlcjpwYXNz"},
    ],
)
def test_either_header_with_any_configured_key_is_accepted(api, jane, headers):
    assert get(api, headers=headers, tuid=jane, request="orcid").status_code == 200


def test_missing_key_is_401_with_a_bearer_challenge(api, jane):
    response = get(api, headers={}, tuid=jane, request="orcid")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="IOI query API"'
    assert "An API key is required" in response.get_data(as_text=True)
    assert get(api, headers={"Authorization": "Bearer "}, tuid=jane, request="orcid").status_code == 401


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": "Bearer wrong"},
        {"Authorization": f"Bearer {KEY}x"},
        {"Authorization": f"Basic {KEY}"},
        {"X-API-Key": KEY[:-1]},
        {"X-API-Key": "ключ"},
        {"X-API-Key": f"{KEY},{OTHER_KEY}"},
    ],
)
def test_wrong_key_is_401(api, jane, headers):
    response = get(api, headers=headers, tuid=jane, request="orcid")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert response.get_data(as_text=True) in ("Invalid API key.\n", "An API key is required: send it as "
                                                "'Authorization: Bearer <key>' or 'X-API-Key: <key>'.\n")  # fmt: skip


def test_allowlist_admits_listed_addresses_only(query_app, jane):
    client = query_app(QUERY_API_KEYS=KEY, QUERY_ALLOWED_IPS="10.0.0.0/8, 2001:db8::1").test_client()

    def from_address(address, headers=AUTH):
        return client.get(
            "/query?tuid=123456&request=orcid", headers=headers, environ_overrides={"REMOTE_ADDR": address}
        )

    assert from_address("10.1.2.3").status_code == 200
    assert from_address("2001:db8::1").status_code == 200
    assert from_address("::ffff:10.9.9.9").status_code == 200
    denied = from_address("192.0.2.7")
    assert denied.status_code == 403
    assert denied.get_data(as_text=True) == "Your address (192.0.2.7) is not allowed to use the query API.\n"
    assert from_address("192.0.2.7", {"X-Forwarded-For": "10.1.2.3", **AUTH}).status_code == 403
    assert from_address("not-an-ip").status_code == 403
    assert from_address("10.1.2.3", {}).status_code == 401  # an allowed address still needs a key


# --- bulk export --------------------------------------------------------------------------------


def add_people(count: int) -> None:
    rows = [
        {"email": f"p{n}@example.edu", "orcid": f"0000-0000-{n // 10000:04d}-{n % 10000:04d}", "name": f"P {n}",
         "localPersonID": n}
        for n in range(1, count + 1)
    ]  # fmt: skip
    db.session.execute(sa.insert(Orcid), rows)
    db.session.commit()


def test_bulk_orcid_export_streams_json_lines(api, jane):
    add_people(2500)
    response = api.get("/query?tuid=all&request=orcid&response=json", headers=AUTH)
    assert response.status_code == 200
    assert response.mimetype == "application/x-ndjson"
    lines = response.get_data(as_text=True).splitlines()
    assert len(lines) == 2501
    assert json.loads(lines[0]) == {"TU ID": "123456", "Full Name": "Smith, Jane", "ORCID": JANE}
    assert json.loads(lines[-1]) == {"TU ID": "2500", "Full Name": "P 2500", "ORCID": "0000-0000-0000-2500"}


def test_bulk_export_is_a_passthrough_generator(query_app, jane):
    keyed = query_app(QUERY_API_KEYS=KEY)
    with keyed.test_request_context("/query?tuid=all&request=orcid&response=csv", headers=AUTH):
        response = views.index()
        assert response.is_streamed and response.direct_passthrough
        assert isinstance(response.response, Generator)
        body = b"".join(response.response)
    assert body == f'TU ID,Full Name,ORCID\r\n123456,"Smith, Jane",{JANE}\r\n'.encode()


def test_bulk_orcid_export_streams_csv(api, jane):
    add_people(1200)
    response = api.get("/query.php?tuid=all&request=orcid&response=csv", headers=AUTH, buffered=False)
    assert response.is_streamed and response.headers["Content-Type"] == "text/csv; charset=utf-8"
    chunks = list(response.response)
    assert len(chunks) > 1000  # row by row, not one body
    rows = list(csv.reader(io.StringIO(b"".join(chunks).decode(), newline="")))
    assert rows[0] == ["TU ID", "Full Name", "ORCID"]
    assert rows[1] == ["123456", "Smith, Jane", JANE]
    assert len(rows) == 1202


def test_bulk_export_memory_stays_flat(api, app):
    add_people(20000)
    response = api.get("/query?tuid=all&request=orcid", headers=AUTH, buffered=False)
    tracemalloc.start()
    lines = 0
    for chunk in response.response:
        lines += chunk.count(b"\n")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert lines == 20000
    assert peak < 2 * 1024 * 1024  # a chunk of 1,000 people at a time, not all 20,000 rows


def test_bulk_export_with_nobody_is_a_header_or_nothing(api):
    assert get(api, tuid="all", request="orcid").get_data() == b""
    assert get(api, tuid="all", request="orcid", response="csv").get_data() == b"TU ID,Full Name,ORCID\r\n"


# --- CSV and BibTeX safety ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ('=HYPERLINK("http://x")', '\'=HYPERLINK("http://x")'),
        ("+1+1", "'+1+1"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("Smith, Jane", "Smith, Jane"),
        ("", ""),
        ("a=b", "a=b"),
    ],
)
def test_safe_cell_neutralises_formulas(value, expected):
    assert safe_cell(value) == expected


def test_csv_quotes_and_neutralises_hostile_metadata(api, app):
    add_person(1, "Smith, Jane", JANE)
    record = item(
        "10754/1",
        '=cmd|" /C calc"!A0',
        [author("Smith, Jane", "k", JANE), author('-O\'Brien, "Pat"')],
        **{"dc.identifier.journal": ['Line one\nline two, "quoted"'], "dc.type": ["@Article"]},
    )
    write_record("dspace", "10754/1", record, T0)
    db.session.commit()
    response = get(api, tuid="1", request="works", response="csv")
    assert response.get_data().decode("utf-8")
    (row,) = csv_rows(response)[1:]
    assert row[0] == "'@Article"
    assert row[1] == '\'=cmd|" /C calc"!A0'
    assert row[2] == 'Smith, Jane||-O\'Brien, "Pat"'  # only the cell's first character matters
    assert row[3] == 'Line one\nline two, "quoted"'
    json_work = get(api, tuid="1", request="works").get_json()[0]
    assert json_work["Title"] == '=cmd|" /C calc"!A0'  # JSON carries the data unchanged


def test_csv_is_utf8(api, app):
    add_person(2, "Müller, Zoë", JANE)
    write_record("dspace", "10754/2", item("10754/2", "Ωmega 🧬 résumé", [author("Müller, Zoë", "k", JANE)]), T0)
    db.session.commit()
    response = get(api, tuid="2", request="works", response="csv")
    text = response.get_data().decode("utf-8")
    assert "Ωmega 🧬 résumé" in text and "Müller, Zoë" in text
    assert (
        get(api, tuid="2", request="orcid", response="csv")
        .get_data()
        .decode("utf-8")
        .endswith(f'"Müller, Zoë",{JANE}\r\n')
    )


def test_bibtex_escapes_specials_and_picks_the_entry_type():
    work = Work(
        "10754/77",
        {
            "dc.title": ["50% of {reefs} & $heat_stress# ^~\\"],
            "dc.contributor.author": ["Smith, Jane", "O'Brien, Pat"],
            "dc.type": ["Conference Paper"],
            "dc.identifier.journal": ["Proc. A&B"],
            "dc.date.issued": ["2020-05"],
            "dc.identifier.doi": ["10.1000/abc_{x}"],
            "dc.identifier.uri": ["http://hdl.handle.net/10754/77"],
        },
    )
    entry = bibtex(work, "tu_")
    assert entry.startswith("@inproceedings{tu_10754_77,\n")
    assert r"title = {50\% of \{reefs\} \& \$heat\_stress\# \^{}\~{}\textbackslash{}}" in entry
    assert "author = {Smith, Jane and O'Brien, Pat}" in entry
    assert r"booktitle = {Proc. A\&B}" in entry
    assert "doi = {10.1000/abc_x}" in entry and "year = {2020}" in entry
    assert entry.count("{") == entry.count("}")
    thesis = Work("1/2", {"dc.type": ["Dissertation"], "dc.title": ["T\nx"], "dc.publisher": ["KAUST"]})
    assert bibtex(thesis, "") == "@phdthesis{1_2,\n  title = {T x},\n  school = {KAUST}\n}"
    assert bibtex(Work("1/3", {}), "k") == "@misc{k1_3}"


# --- documentation and demo hook ----------------------------------------------------------------


def test_openapi_document_describes_the_endpoint(client):
    response = client.get("/query/openapi.json")  # public: no data in it
    assert response.status_code == 200
    doc = response.get_json()
    assert doc["openapi"].startswith("3.")
    operation = doc["paths"]["/query"]["get"]
    params = {p["name"]: p for p in operation["parameters"]}
    assert set(params) == {"tuid", "request", "response", "year"}
    assert params["request"]["schema"]["enum"] == ["orcid", "works"]
    assert set(operation["responses"]) == {"200", "400", "401", "403", "404"}
    assert set(operation["responses"]["200"]["content"]) == {"application/json", "text/csv", "application/x-ndjson"}
    assert doc["components"]["securitySchemes"]["apiKeyHeader"] == {
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
    }
    assert doc["paths"]["/query.php"]["get"]["deprecated"] is True


def test_example_curl_is_a_working_command(api, jane):
    line = example_curl("http://127.0.0.1:5000/", KEY, "TU", jane)
    argv = shlex.split(line)
    assert argv[:3] == ["curl", "-sS", "-H"]
    header_name, _, header_value = argv[3].partition(": ")
    url = urlsplit(argv[4])
    assert (url.scheme, url.netloc, url.path) == ("http", "127.0.0.1:5000", "/query")
    params = {k: v[0] for k, v in parse_qs(url.query).items()}
    assert params == {"tuid": jane, "request": "works", "response": "json"}
    response = api.get(url.path, query_string=params, headers={header_name: header_value})
    assert response.status_code == 200 and len(response.get_json()) == 3


# --- statements per request ---------------------------------------------------------------------


def count_statements(call) -> int:
    """SQL statements executed on any engine while `call()` runs."""
    count = 0

    def on_execute(*args, **kwargs):
        nonlocal count
        count += 1

    sa.event.listen(sa.engine.Engine, "before_cursor_execute", on_execute)
    try:
        call()
    finally:
        sa.event.remove(sa.engine.Engine, "before_cursor_execute", on_execute)
    return count


@pytest.mark.parametrize("response_type", ["json", "csv"])
def test_a_request_costs_the_same_statements_for_1_or_200_works(query_app, response_type):
    """Building an answer (the answer cache is off here; see test_query_cache.py)."""
    api = query_app(QUERY_API_KEYS=KEY, QUERY_CACHE_MB=0).test_client()
    add_person(42, "Smith, Jane", JANE)

    sizes = []

    def fetch() -> None:
        response = get(api, tuid="42", request="works", response=response_type)
        assert response.status_code == 200
        sizes.append(len(response.get_json()) if response_type == "json" else len(csv_rows(response)) - 1)

    add_works(1)
    get(api, tuid="42", request="works")  # warm the connection pool
    few = count_statements(fetch)
    add_works(199, start=1)
    many = count_statements(fetch)
    assert sizes == [1, 200]
    assert few == many == 2  # the person with their ORCID iD, then their works


def test_streamed_and_whole_csv_are_the_same_document():
    rows = [{"A": "=1", "B": 'x,"y"\nz'}, {"A": "", "B": "ü"}]
    assert "".join(csv_lines(["A", "B"], rows)) == csv_text(["A", "B"], rows) == 'A,B\r\n\'=1,"x,""y""\nz"\r\n,ü\r\n'
    assert "".join(csv_lines(["A"], [])) == csv_text(["A"], []) == "A\r\n"


def test_behind_a_trusted_proxy_the_allowlist_sees_the_forwarded_client(query_app, jane):
    client = query_app(QUERY_API_KEYS=KEY, QUERY_ALLOWED_IPS="10.0.0.0/8", IOI_PROXY_COUNT=1).test_client()

    def via_proxy(forwarded_for):
        headers = {"X-Forwarded-For": forwarded_for, **AUTH}
        environ = {"REMOTE_ADDR": "127.0.0.1"}
        return client.get("/query?tuid=123456&request=orcid", headers=headers, environ_overrides=environ)

    assert via_proxy("10.1.2.3").status_code == 200
    assert via_proxy("192.0.2.7").status_code == 403
    assert via_proxy("10.1.2.3, 192.0.2.7").status_code == 403  # only the hop the proxy added is trusted

"""Property-based run of schemathesis against the query API's own OpenAPI document, in process (WSGI).

The cases are drawn with Hypothesis from each operation's strategy (valid and invalid data) and
every response is checked: no server error, and status, content type, headers and JSON bodies as
the document says. Bounded to 50 examples per operation and mode.

One check is left out: `positive_data_acceptance`, because one rule spans two parameters and
OpenAPI 3.0 cannot state it (`{abbrev}id=all` goes with request=orcid only; with request=works
it is a documented 400).
"""

from __future__ import annotations

import pytest
import schemathesis
from conftest import make_app
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import positive_data_acceptance
from test_query_works import JANE, add_person, add_works

from ioi.extensions import db

KEY = "schemathesis-key-0123456789"


@pytest.fixture
def api_schema(app, migrated):
    """The document served by an app with a key, and people with an iD, without one, and works to find."""
    add_person(123456, "Smith, Jane", JANE)
    add_person(7, "Doe, John")
    add_works(5)
    keyed = make_app(migrated, QUERY_API_KEYS=KEY)
    yield schemathesis.openapi.from_wsgi("/query/openapi.json", keyed)
    with keyed.app_context():
        db.engine.dispose()


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_query_api_conforms_to_its_document(api_schema, mode):
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert {op.path for op in operations} == {"/query", "/query.php"}
    for operation in operations:

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=50, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def check(case):
            case.call_and_validate(
                headers={"Authorization": f"Bearer {KEY}"}, excluded_checks=[positive_data_acceptance]
            )

        check()

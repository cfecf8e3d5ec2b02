from datetime import datetime

import pytest
import sqlalchemy as sa

from ioi.extensions import db
from ioi.models import UserSelection
from ioi.services.selections import choices_since, is_ignored, live_choices, record_choices

ORCID = "0000-0002-1825-0097"
T0, T1, T2 = datetime(2026, 1, 1, 9), datetime(2026, 1, 2, 9), datetime(2026, 1, 3, 9)


def rows():
    return db.session.execute(sa.select(UserSelection).order_by(UserSelection.rowID)).scalars().all()


def test_first_choices_are_recorded_once(app):
    changes = record_choices(ORCID, "work", ["repository_10754/1", "repository_10754/2"], ["repository_10754/3"], T0)
    assert changes.newly_selected == ["repository_10754/1", "repository_10754/2"]
    assert changes.newly_ignored == ["repository_10754/3"]
    assert live_choices(ORCID, "work") == {
        "repository_10754/1": "selected",
        "repository_10754/2": "selected",
        "repository_10754/3": "ignored",
    }
    again = record_choices(ORCID, "work", ["repository_10754/1", "repository_10754/2"], ["repository_10754/3"], T1)
    assert again.previously_selected == ["repository_10754/1", "repository_10754/2"]
    assert again.previously_ignored == ["repository_10754/3"]
    assert again.newly_selected == again.newly_ignored == []
    assert len(rows()) == 3


def test_changing_a_choice_withdraws_the_old_row_and_keeps_history(app):
    record_choices(ORCID, "work", ["repository_10754/1"], ["repository_10754/2"], T0)
    changes = record_choices(ORCID, "work", ["repository_10754/2"], ["repository_10754/1"], T1)
    assert changes.newly_selected == ["repository_10754/2"] and changes.newly_ignored == ["repository_10754/1"]
    assert is_ignored(ORCID, "work", "repository_10754/1")
    assert not is_ignored(ORCID, "work", "repository_10754/2")
    history = [(r.localSourceRecordID, r.selected, r.ignored, r.deleted) for r in rows()]
    assert history == [
        ("repository_10754/1", T0, None, T1),
        ("repository_10754/2", None, T0, T1),
        ("repository_10754/2", T1, None, None),
        ("repository_10754/1", None, T1, None),
    ]


def test_choices_are_per_person_and_type(app):
    record_choices(ORCID, "work", ["x"], [], T0)
    record_choices(ORCID, "employment", [], ["x"], T0)
    record_choices("0000-0002-9079-593X", "work", [], ["x"], T0)
    assert live_choices(ORCID, "work") == {"x": "selected"}
    assert live_choices(ORCID, "employment") == {"x": "ignored"}


def test_choices_since_lists_live_choices_of_that_kind(app):
    record_choices(ORCID, "work", ["a"], ["b"], T0)
    record_choices(ORCID, "work", ["c"], [], T2)
    record_choices(ORCID, "work", [], ["a"], T2)
    assert choices_since("work", "selected", T1) == [(ORCID, "c", T2)]
    assert choices_since("work", "ignored", T1) == [(ORCID, "a", T2)]
    assert [r[1] for r in choices_since("work", "ignored", None)] == ["b", "a"]


def test_an_item_cannot_be_both(app):
    with pytest.raises(ValueError):
        record_choices(ORCID, "work", ["a"], ["a"], T0)

from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa

from ioi.extensions import db
from ioi.models import Metadata, SourceData
from ioi.services import data_versions, metadata_store
from ioi.services.metadata_store import (
    Value,
    delete_record,
    flatten,
    read_record,
    read_records,
    save_source_data,
    save_source_data_many,
    write_record,
    write_records,
)

T0 = datetime(2026, 1, 5, 9, 0, 0)
T1 = T0 + timedelta(minutes=10)
T2 = T0 + timedelta(minutes=20)
HANDLE = "10754/1"


def author(name, key=None, orcid=None):
    if key is None:
        return Value(name)
    grandchildren = {"dc.identifier.orcid": [orcid]} if orcid else {}
    return Value(name, {"dspace.authority.key": [Value(key, grandchildren)]})


def item(**overrides):
    record = {
        "dc.title": ["Coral reef resilience"],
        "dc.contributor.author": [
            author("Smith, Jane", "key-1", "0000-0002-1825-0097"),
            author("Doe, John", "key-2"),
            author("Roe, Richard"),
        ],
        "dc.date.issued": ["2019-03-05"],
        "dc.subject": ["corals", "heat stress", "genomics"],
    }
    record.update(overrides)
    return record


def rows(**filters):
    query = sa.select(Metadata).filter_by(**filters).order_by(Metadata.rowID)
    return db.session.execute(query).scalars().all()


def live(**filters):
    return [r for r in rows(**filters) if r.deleted is None]


def test_new_record_inserts_values_children_and_grandchildren(app):
    result = write_record("dspace", HANDLE, item(), T0)
    db.session.commit()

    assert result.status == "new"
    assert result.fields == dict.fromkeys(["dc.title", "dc.contributor.author", "dc.date.issued", "dc.subject"], "new")
    assert result.inserted == 1 + 3 + 2 + 1 + 1 + 3  # values, 2 keys, 1 orcid
    smith = live(field="dc.contributor.author", place=1)[0]
    (key,) = live(parentRowID=smith.rowID)
    (orcid,) = live(parentRowID=key.rowID)
    assert (key.field, key.value, key.place) == ("dspace.authority.key", "key-1", 1)
    assert (orcid.field, orcid.value) == ("dc.identifier.orcid", "0000-0002-1825-0097")
    assert all(r.added == T0 and r.source == "dspace" and r.idInSource == HANDLE for r in rows())
    assert [r.place for r in live(field="dc.subject")] == [1, 2, 3]


def test_read_record_returns_the_live_tree_in_place_order(app):
    write_record("dspace", HANDLE, item(), T0)
    record = read_record("dspace", HANDLE)
    assert flatten(record)["dc.subject"] == ["corals", "heat stress", "genomics"]
    smith = record["dc.contributor.author"][0]
    assert smith.children["dspace.authority.key"][0].value == "key-1"
    assert smith.children["dspace.authority.key"][0].children["dc.identifier.orcid"][0].value == "0000-0002-1825-0097"
    assert record["dc.contributor.author"][2].children == {}
    assert read_record("dspace", "10754/none") == {}


def test_rewriting_the_same_record_changes_nothing(app, statements):
    write_record("dspace", HANDLE, item(), T0)
    before = [(r.rowID, r.value, r.deleted) for r in rows()]
    with statements() as count:
        result = write_record("dspace", HANDLE, item(), T1)
    assert result.status == "unchanged"
    assert set(result.fields.values()) == {"unchanged"}
    assert (result.inserted, result.deleted) == (0, 0)
    assert count.value == 1  # a single SELECT
    assert [(r.rowID, r.value, r.deleted) for r in rows()] == before


def test_changed_value_replaces_the_row_and_retires_its_children(app):
    write_record("dspace", HANDLE, item(), T0)
    old_smith = live(field="dc.contributor.author", place=1)[0]
    old_key = live(parentRowID=old_smith.rowID)[0]

    changed = item()
    changed["dc.contributor.author"][0] = author("Smith, Jane A.", "key-1", "0000-0002-1825-0097")
    result = write_record("dspace", HANDLE, changed, T1)
    db.session.commit()

    assert result.status == "updated"
    assert result.fields["dc.contributor.author"] == "updated"
    assert result.fields["dc.title"] == "unchanged"
    db.session.refresh(old_smith)
    new_smith = live(field="dc.contributor.author", place=1)[0]
    assert (old_smith.deleted, old_smith.replacedByRowID) == (T1, new_smith.rowID)
    assert new_smith.value == "Smith, Jane A."
    assert all(r.deleted == T1 for r in rows(parentRowID=old_key.rowID)) and rows(rowID=old_key.rowID)[0].deleted == T1
    assert live(parentRowID=new_smith.rowID)[0].value == "key-1"
    # the other authors were not touched
    authors = sorted(live(field="dc.contributor.author"), key=lambda r: r.place)
    assert [r.value for r in authors] == ["Smith, Jane A.", "Doe, John", "Roe, Richard"]


def test_child_change_under_an_unchanged_value_keeps_the_value_row(app):
    write_record("dspace", HANDLE, item(), T0)
    doe = live(field="dc.contributor.author", place=2)[0]
    changed = item()
    changed["dc.contributor.author"][1] = author("Doe, John", "key-2", "0000-0002-9079-593X")
    result = write_record("dspace", HANDLE, changed, T1)

    assert result.fields["dc.contributor.author"] == "updated"
    assert result.inserted == 1 and result.deleted == 0
    assert live(field="dc.contributor.author", place=2)[0].rowID == doe.rowID
    key = live(parentRowID=doe.rowID)[0]
    assert live(parentRowID=key.rowID)[0].value == "0000-0002-9079-593X"


def test_removed_child_marks_field_updated(app):
    write_record("dspace", HANDLE, item(), T0)
    changed = item()
    changed["dc.contributor.author"][0] = author("Smith, Jane", "key-1")  # ORCID iD removed
    result = write_record("dspace", HANDLE, changed, T1)
    assert result.fields["dc.contributor.author"] == "updated"
    assert result.deleted == 1
    assert live(field="dc.identifier.orcid") == []
    assert rows(field="dc.identifier.orcid")[0].deleted == T1


def test_vanished_places_and_fields_are_marked_deleted_with_descendants(app):
    write_record("dspace", HANDLE, item(), T0)
    smaller = item(**{"dc.subject": ["corals"]})
    del smaller["dc.contributor.author"]
    total_before = len(rows())

    result = write_record("dspace", HANDLE, smaller, T1)
    db.session.commit()

    assert result.fields["dc.subject"] == "updated"
    assert result.fields["dc.contributor.author"] == "deleted"
    assert [r.value for r in live(field="dc.subject")] == ["corals"]
    assert live(field="dc.contributor.author") == []
    assert live(field="dspace.authority.key") == [] and live(field="dc.identifier.orcid") == []
    assert len(rows()) == total_before  # history is never removed
    assert {r.deleted for r in rows() if r.deleted} == {T1}


def test_history_accumulates_across_versions(app):
    write_record("dspace", HANDLE, item(**{"dc.title": ["v1"]}), T0)
    write_record("dspace", HANDLE, item(**{"dc.title": ["v2"]}), T1)
    write_record("dspace", HANDLE, item(**{"dc.title": ["v3"]}), T2)
    titles = rows(field="dc.title")
    assert [t.value for t in titles] == ["v1", "v2", "v3"]
    assert titles[0].replacedByRowID == titles[1].rowID and titles[1].replacedByRowID == titles[2].rowID
    assert [t.deleted for t in titles] == [T1, T2, None]


def test_values_are_compared_exactly(app):
    write_record("dspace", HANDLE, item(**{"dc.title": ["Coral Reef"]}), T0)
    result = write_record("dspace", HANDLE, item(**{"dc.title": ["Coral reef"]}), T1)
    assert result.fields["dc.title"] == "updated"


def test_records_and_sources_are_kept_apart(app):
    write_record("dspace", HANDLE, item(), T0)
    write_record("local", "person_1", {"local.person.name": ["Smith, Jane"]}, T0)
    write_record("dspace", "10754/2", {"dc.title": ["Other"]}, T0)
    write_record("dspace", HANDLE, {"dc.title": ["Only a title"]}, T1)
    assert flatten(read_record("local", "person_1")) == {"local.person.name": ["Smith, Jane"]}
    assert flatten(read_record("dspace", "10754/2")) == {"dc.title": ["Other"]}
    assert flatten(read_record("dspace", HANDLE)) == {"dc.title": ["Only a title"]}


def test_round_trips_are_bounded_per_batch_not_per_value(app, statements):
    records = {f"10754/{n}": item(**{"dc.title": [f"Title {n}"]}) for n in range(50)}
    with statements() as count:
        results = write_records("dspace", records, T0)
    assert all(r.status == "new" for r in results.values())
    assert len(rows()) == 50 * 11
    assert count.value <= 7  # select + per nesting level an insert and a read-back of parents' ids + the bump
    assert data_versions.current() == (1, 0)  # one bump of the metadata counter for the batch

    for n in range(50):
        records[f"10754/{n}"]["dc.title"] = [f"Renamed {n}"]
        records[f"10754/{n}"]["dc.contributor.author"][0] = author("Smith, J.", "key-1", "0000-0002-1825-0097")
    with statements() as count:
        results = write_records("dspace", records, T1)
    assert all(r.status == "updated" for r in results.values())
    assert count.value <= 10  # select + per level an insert and a read-back + 2 updates + the bump
    with statements() as count:
        write_records("dspace", records, T2)
    assert count.value == 1  # nothing changed: nothing written, no bump
    assert data_versions.current() == (2, 0)


def test_writes_use_no_insert_returning_which_mysql_lacks(app, statements):
    """MySQL (the PHP IOI's server) has no INSERT ... RETURNING: new ids are read back by position."""
    records = {f"10754/{n}": item(**{"dc.title": [f"Title {n}"]}) for n in range(3)}
    with statements() as count:
        write_records("dspace", records, T0)
        save_source_data_many("dspace", {h: f'{{"v": 1, "h": "{h}"}}' for h in records}, "JSON", T0)
        records["10754/1"]["dc.contributor.author"][0] = author("Smith, J.", "key-9", "0000-0002-1825-0097")
        write_records("dspace", records, T1)
        save_source_data_many("dspace", {"10754/1": '{"v": 2}'}, "JSON", T1)
        save_source_data("dspace", "10754/2", '{"v": 2}', "JSON", T1)
    db.session.commit()
    assert not [text for text in count.texts if "RETURNING" in text.upper()]

    (old, new) = rows(idInSource="10754/1", field="dc.contributor.author", place=1)
    assert (old.deleted, old.replacedByRowID, new.deleted) == (T1, new.rowID, None)
    (key,) = live(parentRowID=new.rowID)
    assert (key.value, [o.value for o in live(parentRowID=key.rowID)]) == ("key-9", ["0000-0002-1825-0097"])
    for handle in ("10754/1", "10754/2"):  # replaced through save_source_data_many and save_source_data
        old, new = db.session.execute(
            sa.select(SourceData).where(SourceData.idInSource == handle).order_by(SourceData.rowID)
        ).scalars()
        assert (old.deleted, old.replacedByRowID) == (T1, new.rowID)
        assert (new.deleted, new.sourceData) == (None, '{"v": 2}')


TRICKY = ["O'Brien, Seán", 'back\\slash "quoted"', "😀 𝔐𝔞𝔱𝔥", "", "line\nbreak\ttab", "x" * 70_000]
TRICKY += ["NULL", "%s %(x)s ?", "[1, null]"]


def stored_rows(id_in_source):
    """(parent's field, field, place, value) of an item's rows, independent of rowIDs."""
    fields = {r.rowID: r.field for r in rows(idInSource=id_in_source)}
    return sorted((fields.get(r.parentRowID, ""), r.field, r.place, r.value) for r in rows(idInSource=id_in_source))


def test_both_insert_paths_store_the_same_rows(app, monkeypatch):
    """MariaDB 10.6+ inserts through JSON_TABLE; other servers and SQLite through a batched INSERT."""
    if not metadata_store._has_json_table(db.engine.dialect):
        pytest.skip("this database has no JSON_TABLE: only the batched INSERT applies")
    record = item(**{"dc.subject": TRICKY, "dc.title": [Value("Title", {"dspace.metadata.language": ["en_US"]})]})
    write_record("dspace", "10754/json", record, T0)
    monkeypatch.setattr(metadata_store, "_has_json_table", lambda dialect: False)
    write_record("dspace", "10754/plain", record, T0)
    db.session.commit()
    assert stored_rows("10754/json") == stored_rows("10754/plain")
    assert flatten(read_record("dspace", "10754/json"))["dc.subject"] == TRICKY
    assert {r.added for r in rows(idInSource="10754/json")} == {T0}


def test_many_long_values_are_split_over_several_statements(app, statements, monkeypatch):
    monkeypatch.setattr(metadata_store, "JSON_CHUNK", 100_000)
    abstracts = [f"{n} " + "long abstract " * 2_000 for n in range(20)]  # 28,000 characters each
    with statements() as count:
        write_record("dspace", HANDLE, {"dc.description.abstract": abstracts, "dc.title": ["T"]}, T0)
    db.session.commit()
    assert flatten(read_record("dspace", HANDLE)) == {"dc.description.abstract": abstracts, "dc.title": ["T"]}
    if metadata_store._has_json_table(db.engine.dialect):
        assert len([t for t in count.texts if "JSON_TABLE" in t]) == 7  # 3 abstracts a statement; the last 2 and T


def test_a_value_too_long_for_its_column_fails_instead_of_being_cut(app):
    if db.engine.dialect.name == "sqlite":
        pytest.skip("SQLite does not enforce column lengths")
    with pytest.raises(sa.exc.DBAPIError, match="too long"):
        write_record("dspace", "10754/" + "9" * 200, {"dc.title": ["Too long a handle"]}, T0)
    db.session.rollback()
    assert rows(field="dc.title") == []


def test_delete_record_retires_metadata_and_source_data(app):
    write_record("dspace", HANDLE, item(), T0)
    save_source_data("dspace", HANDLE, '{"handle": "10754/1"}', "JSON", T0)
    before = data_versions.current()
    count = delete_record("dspace", HANDLE, T1)
    db.session.commit()
    assert count == 11
    assert data_versions.current() == (before[0] + 1, 0)
    assert live() == [] and len(rows()) == 11
    assert db.session.execute(sa.select(SourceData.deleted)).scalar_one() == T1
    assert write_record("dspace", HANDLE, item(), T2).status == "new"


def test_source_data_is_versioned(app):
    assert save_source_data("dspace", HANDLE, '{"v": 1}', "JSON", T0) == "new"
    assert save_source_data("dspace", HANDLE, '{"v": 1}', "JSON", T1) == "unchanged"
    assert save_source_data("dspace", HANDLE, '{"v": 2}', "JSON", T2) == "modified"
    db.session.commit()
    versions = db.session.execute(sa.select(SourceData).order_by(SourceData.rowID)).scalars().all()
    assert [v.sourceData for v in versions] == ['{"v": 1}', '{"v": 2}']
    assert (versions[0].deleted, versions[0].replacedByRowID, versions[1].deleted) == (T2, versions[1].rowID, None)


def test_unicode_values_round_trip(app):
    write_record("dspace", HANDLE, {"dc.title": ["Ωmega 🧬 résumé"]}, T0)
    db.session.commit()
    db.session.expire_all()
    assert flatten(read_records("dspace", [HANDLE])[HANDLE]) == {"dc.title": ["Ωmega 🧬 résumé"]}

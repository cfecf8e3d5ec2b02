"""Tokens: encrypted at rest, legacy plain rows still read and encrypted when rewritten, retirement."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa
from conftest import make_app
from cryptography.fernet import Fernet

from ioi import settings_of
from ioi.extensions import db
from ioi.models import Token
from ioi.services import tokens

NOW = datetime(2026, 11, 24, 12, 0, 0)
ORCID = "0000-0002-1825-0097"
ACCESS = "5a2b7c9e-1111-4222-8333-944455556666"
REFRESH = "0f0e0d0c-aaaa-4bbb-8ccc-ddddeeeeffff"


def response(access=ACCESS, refresh=REFRESH, scope="/read-limited /activities/update", orcid=ORCID):
    return {
        "access_token": access,
        "token_type": "bearer",
        "refresh_token": refresh,
        "expires_in": 631138518,
        "scope": scope,
        "name": "Sofia Garcia",
        "orcid": orcid,
    }


def stored_rows():
    return db.session.execute(sa.select(Token.access_token, Token.refresh_token, Token.deleted)).all()


def insert_legacy(access: str, orcid: str = ORCID, scope: str = "/activities/update", created: datetime = NOW):
    """A row as the PHP IOI wrote it: plain token values."""
    db.session.execute(
        sa.insert(Token.__table__).values(
            access_token=access,
            refresh_token=REFRESH,
            expiration=created + timedelta(days=3650),
            scope=scope,
            orcid=orcid,
            name="Legacy Person",
            created=created,
        )
    )
    db.session.commit()


def test_stored_tokens_are_encrypted_and_read_back(app):
    settings = settings_of(app)
    info = tokens.store_token(settings, response(), NOW)
    db.session.commit()
    assert (info.access_token, info.refresh_token) == (ACCESS, REFRESH)
    assert info.expiration == NOW + timedelta(seconds=631138518)
    [(access, refresh, _)] = stored_rows()
    assert ACCESS not in access and REFRESH not in (refresh or "")
    assert Fernet(settings.token_key).decrypt(access.encode()).decode() == ACCESS
    assert len(access) <= 255
    live = tokens.live_token(settings, ORCID, NOW)
    assert live is not None and live.access_token == ACCESS and live.refresh_token == REFRESH
    assert ACCESS not in repr(live)


def test_storing_the_same_token_again_does_not_duplicate_it(app):
    settings = settings_of(app)
    tokens.store_token(settings, response(), NOW)
    tokens.store_token(settings, response(), NOW + timedelta(minutes=1))
    db.session.commit()
    assert len(stored_rows()) == 1


def test_legacy_plain_rows_are_read_and_encrypted_when_retired(app):
    settings = settings_of(app)
    insert_legacy(ACCESS)
    live = tokens.live_token(settings, ORCID, NOW)
    assert live is not None and live.access_token == ACCESS and live.refresh_token == REFRESH
    retired = tokens.retire_tokens(settings, ORCID, "scope_changed", NOW)
    db.session.commit()
    assert [t.access_token for t in retired] == [ACCESS]
    [(access, refresh, deleted)] = stored_rows()
    assert deleted == NOW
    assert tokens.is_encrypted(access) and tokens.is_encrypted(refresh)
    assert tokens.decrypt(settings, access) == ACCESS
    reason = db.session.execute(sa.select(Token.deletedReason)).scalar_one()
    assert reason == "scope_changed"
    assert tokens.live_token(settings, ORCID, NOW) is None


def test_encrypt_legacy_tokens_rewrites_only_plain_rows(app):
    settings = settings_of(app)
    insert_legacy(ACCESS)
    tokens.store_token(settings, response(access="another-token", orcid="0000-0002-9079-593X"), NOW)
    db.session.commit()
    assert tokens.encrypt_legacy_tokens(settings) == 1
    db.session.commit()
    assert all(tokens.is_encrypted(a) for a, _, _ in stored_rows())
    assert tokens.live_token(settings, ORCID, NOW).access_token == ACCESS


def test_newest_unexpired_token_is_live(app):
    settings = settings_of(app)
    insert_legacy("old-token", created=NOW - timedelta(days=10))
    tokens.store_token(settings, {**response(access="short"), "expires_in": 60}, NOW)
    db.session.commit()
    assert tokens.live_token(settings, ORCID, NOW).access_token == "short"
    assert tokens.live_token(settings, ORCID, NOW + timedelta(minutes=2)).access_token == "old-token"
    assert [t.access_token for t in tokens.live_tokens(settings, ORCID)] == ["short", "old-token"]
    assert tokens.live_token_orcids(NOW) == [ORCID]


def test_retiring_one_token_leaves_the_others(app):
    settings = settings_of(app)
    insert_legacy("first", created=NOW - timedelta(days=1))
    tokens.store_token(settings, response(access="second"), NOW)
    retired = tokens.retire_tokens(settings, ORCID, "invalid_token", NOW, access_token="second")
    db.session.commit()
    assert [t.access_token for t in retired] == ["second"]
    assert tokens.live_token(settings, ORCID, NOW).access_token == "first"


def test_a_changed_key_is_an_error_not_a_bearer_token(app, migrated):
    tokens.store_token(settings_of(app), response(), NOW)
    db.session.commit()
    other = settings_of(make_app(migrated, TOKEN_ENCRYPTION_KEY=Fernet.generate_key().decode()))
    with pytest.raises(tokens.TokenKeyError):
        tokens.live_token(other, ORCID, NOW)


@pytest.mark.parametrize(
    "scope,item_type,allowed",
    [
        ("/authenticate /read-limited /activities/update", "work", True),
        ("/activities/update", "employment", True),
        ("/authenticate", "work", False),
        ("/orcid-works/create", "work", True),
        ("/orcid-works/create", "employment", False),
        ("/affiliations/create", "education", True),
        ("/affiliations/create", "work", False),
        ("", "work", False),
    ],
)
def test_can_update_by_scope_and_item_type(scope, item_type, allowed):
    assert tokens.can_update(scope, item_type) is allowed


def test_people_needing_reconsent_are_those_refused_without_a_newer_token(app):
    settings = settings_of(app)
    refused, reconnected, disconnected = ORCID, "0000-0002-9079-593X", "0000-0001-5000-0007"
    for orcid in (refused, reconnected, disconnected):
        tokens.store_token(settings, response(access=f"t-{orcid}", orcid=orcid), NOW - timedelta(days=1))
    tokens.retire_tokens(settings, refused, "invalid_token", NOW)
    tokens.retire_tokens(settings, reconnected, "invalid_token", NOW)
    tokens.store_token(settings, response(access="fresh", orcid=reconnected), NOW)
    tokens.retire_tokens(settings, disconnected, "disconnected", NOW)
    db.session.commit()
    found = tokens.people_needing_reconsent(NOW)
    assert [(p.orcid, p.reason) for p in found] == [(refused, "invalid_token")]


def test_a_person_who_disconnected_after_a_refusal_is_not_asked_to_reconsent(app):
    settings = settings_of(app)
    tokens.store_token(settings, response(access="first", orcid=ORCID), NOW - timedelta(days=3))
    tokens.retire_tokens(settings, ORCID, "invalid_token", NOW - timedelta(days=2))
    tokens.store_token(settings, response(access="second", orcid=ORCID), NOW - timedelta(days=1))
    tokens.retire_tokens(settings, ORCID, "disconnected", NOW)
    db.session.commit()
    assert tokens.people_needing_reconsent(NOW) == []

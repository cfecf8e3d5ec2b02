"""Reading task reports (`messages`) and the ORCID call log (`orcidCalls`) for the admin area."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

from sqlalchemy import case, func, or_, select

from ioi.extensions import db
from ioi.models import Message, OrcidCall

T = TypeVar("T")
PAGE_SIZE = 50


@dataclass
class Page(Generic[T]):
    items: list[T]
    page: int
    pages: int
    total: int

    @property
    def has_previous(self) -> bool:
        return self.page > 1

    @property
    def has_next(self) -> bool:
        return self.page < self.pages


def _page(query, count_query, page: int, size: int) -> Page:
    total = db.session.execute(count_query).scalar_one()
    pages = max(1, -(-total // size))
    page = min(max(1, page), pages)
    items = list(db.session.execute(query.limit(size).offset((page - 1) * size)).scalars())
    return Page(items, page, pages, total)


def message_has_errors():
    """SQL: the message reports errors (an ERROR line, or a summary with a non-zero error count)."""
    return or_(
        Message.message.like("%ERROR:%"),
        (Message.type == "summary") & Message.message.like("%errors%") & ~Message.message.like("%- 0 errors%"),
    )


def processes() -> list[str]:
    """Every process name that saved a message."""
    return list(db.session.execute(select(Message.process).distinct().order_by(Message.process)).scalars())


def list_messages(
    process: str | None = None, errors_first: bool = True, page: int = 1, size: int = PAGE_SIZE
) -> Page[Message]:
    """Messages newest first (those reporting errors first if asked), optionally of one process."""
    query = select(Message)
    count = select(func.count()).select_from(Message)
    if process:
        query = query.where(Message.process == process)
        count = count.where(Message.process == process)
    order = [Message.timestamp.desc(), Message.messageID.desc()]
    if errors_first:
        order.insert(0, case((message_has_errors(), 0), else_=1))
    return _page(query.order_by(*order), count, page, size)


def get_message(message_id: int) -> Message | None:
    return db.session.get(Message, message_id)


def call_processes() -> list[str]:
    return list(db.session.execute(select(OrcidCall.process).distinct().order_by(OrcidCall.process)).scalars())


def list_calls(
    process: str | None = None, errors_first: bool = False, page: int = 1, size: int = PAGE_SIZE
) -> Page[OrcidCall]:
    """ORCID calls newest first (failed ones first if asked: no status or status ≥ 400)."""
    query = select(OrcidCall)
    count = select(func.count()).select_from(OrcidCall)
    if process:
        query = query.where(OrcidCall.process == process)
        count = count.where(OrcidCall.process == process)
    order = [OrcidCall.timestamp.desc(), OrcidCall.callID.desc()]
    if errors_first:
        failed = or_(OrcidCall.status.is_(None), OrcidCall.status >= 400)
        order.insert(0, case((failed, 0), else_=1))
    return _page(query.order_by(*order), count, page, size)

"""Encrypted tokens, the reason a token was retired, and the ORCID call log.

- `tokens.access_token` and `tokens.refresh_token` widen to 255 characters: the port stores
  them encrypted (rows written by the PHP IOI in plain text are still read).
- `tokens.deletedReason` says why a token was retired (revoked by the researcher, replaced by a
  new grant, disconnected...), so people whose token became invalid can be invited to re-consent.
- `orcidCalls` records every call to ORCID for the admin audit view: method, URL, status and
  milliseconds, never a token.

All additive: the PHP IOI keeps working on the same database.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

INT = sa.Integer().with_variant(mysql.INTEGER(display_width=11), "mysql", "mariadb")
TIMESTAMP = sa.DateTime().with_variant(mysql.TIMESTAMP(), "mysql", "mariadb")


def upgrade():
    with op.batch_alter_table("tokens") as batch:
        batch.alter_column("access_token", existing_type=sa.String(50), type_=sa.String(255), existing_nullable=False)
        batch.alter_column("refresh_token", existing_type=sa.String(200), type_=sa.String(255), existing_nullable=True)
        batch.add_column(sa.Column("deletedReason", sa.String(100), nullable=True))
    op.create_table(
        "orcidCalls",
        sa.Column("callID", INT, primary_key=True, autoincrement=True),
        sa.Column("process", sa.String(50), nullable=False),
        sa.Column("method", sa.String(10), nullable=False),
        sa.Column("url", sa.String(500), nullable=False),
        sa.Column("status", INT, nullable=True),
        sa.Column("ms", INT, nullable=False),
        sa.Column("timestamp", TIMESTAMP, nullable=False, server_default=sa.text("CURRENT_TIMESTAMP")),
        mysql_engine="InnoDB",
        mysql_charset="utf8mb4",
    )
    op.create_index("timestamp", "orcidCalls", ["timestamp"])
    op.create_index("process", "orcidCalls", ["process"])


def downgrade():
    op.drop_table("orcidCalls")
    with op.batch_alter_table("tokens") as batch:
        batch.drop_column("deletedReason")

"""Change counters for the query API's response cache.

`dataVersions` holds one counter per kind of data the query API answers from ('metadata',
'orcids'). IOI bumps a counter in the same transaction as every change of that data, so a web
worker can keep finished responses and reuse them while the counters it saw are unchanged.
Rows are created by the first change; a missing row reads as 0.

Additive only: the PHP IOI keeps working on the same database (its writes do not bump the
counters; cached responses then expire after QUERY_CACHE_SECONDS).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "dataVersions",
        sa.Column("name", sa.String(50), primary_key=True),
        sa.Column("version", sa.BigInteger(), nullable=False, server_default="0"),
        mysql_engine="InnoDB",
        mysql_charset="utf8mb4",
    )


def downgrade():
    op.drop_table("dataVersions")

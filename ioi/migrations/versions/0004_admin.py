"""Invitation email batches, for the admin area's Send Emails tab.

`emailBatches` records each batch of invitations: who started it, for which group and invitation
type, its progress counters and when it finished. `runLock` is set while a batch runs and is
unique, so two batches cannot run at once (a double click or two admins), whichever web worker
receives the request; it is cleared when the batch ends.

Additive only: the PHP IOI keeps working on the same database.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

INT = sa.Integer().with_variant(mysql.INTEGER(display_width=11), "mysql", "mariadb")
TIMESTAMP = sa.DateTime().with_variant(mysql.TIMESTAMP(), "mysql", "mariadb")


def upgrade():
    op.create_table(
        "emailBatches",
        sa.Column("batchID", INT, primary_key=True, autoincrement=True),
        sa.Column("groupLabel", sa.String(50), nullable=False),
        sa.Column("inviteType", sa.String(30), nullable=False),
        sa.Column("sentBy", sa.String(100), nullable=False),
        sa.Column("started", TIMESTAMP, nullable=False, server_default=sa.text("CURRENT_TIMESTAMP")),
        sa.Column("heartbeat", TIMESTAMP, nullable=True),
        sa.Column("finished", TIMESTAMP, nullable=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("total", INT, nullable=False, server_default="0"),
        sa.Column("sent", INT, nullable=False, server_default="0"),
        sa.Column("skipped", INT, nullable=False, server_default="0"),
        sa.Column("failed", INT, nullable=False, server_default="0"),
        sa.Column("lastError", sa.Text(), nullable=True),
        sa.Column("runLock", sa.String(20), nullable=True),
        sa.UniqueConstraint("runLock", name="runLock"),
        mysql_engine="InnoDB",
        mysql_charset="utf8mb4",
    )
    op.create_index("groupType", "emailBatches", ["groupLabel", "inviteType"])
    op.create_index("started", "emailBatches", ["started"])


def downgrade():
    op.drop_table("emailBatches")

"""Store full Unicode: convert tables from MySQL's 3-byte `utf8` to `utf8mb4`.

The PHP IOI created its tables as `utf8` (utf8mb3), which cannot hold characters outside the
Basic Multilingual Plane: a repository title with an emoji or a mathematical letter could not be
saved. Values are kept as they are; `utf8mb4_general_ci` keeps the original comparison rules.
MySQL widens TEXT columns to MEDIUMTEXT on conversion, so they are set back to TEXT (their data
fits: it was stored in a column of the same byte length). Nothing to do on SQLite or on tables
that are already utf8mb4. On a large `metadata` table the rebuild takes a while: plan a window.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TABLES = (
    "emailTemplates", "groups", "mappings", "messages", "metadata", "orcids",
    "putCodes", "sourceData", "tokens", "users", "userSelections",
)  # fmt: skip
TEXT_COLUMNS = {
    "groups": ("titles", "titleParts", "titlePartsToIgnore"),
    "putCodes": ("apiResponse",),
}


def upgrade():
    bind = op.get_bind()
    if bind.dialect.name not in ("mysql", "mariadb"):
        return
    charsets = dict(
        bind.execute(
            sa.text(
                "SELECT t.TABLE_NAME, c.CHARACTER_SET_NAME FROM information_schema.TABLES t "
                "JOIN information_schema.COLLATION_CHARACTER_SET_APPLICABILITY c "
                "ON c.COLLATION_NAME = t.TABLE_COLLATION WHERE t.TABLE_SCHEMA = DATABASE()"
            )
        ).all()
    )
    for table in TABLES:
        if charsets.get(table) == "utf8mb4":
            continue
        op.execute(f"ALTER TABLE `{table}` CONVERT TO CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci")
        for column in TEXT_COLUMNS.get(table, ()):
            op.execute(f"ALTER TABLE `{table}` MODIFY `{column}` TEXT CHARACTER SET utf8mb4 NOT NULL")


def downgrade():
    # Converting back could corrupt 4-byte characters stored since; keep utf8mb4.
    pass

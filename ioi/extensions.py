"""Flask extensions, created unbound and attached in `create_app`."""

from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.schema import CreateIndex, DropIndex

db = SQLAlchemy()
migrate = Migrate()
csrf = CSRFProtect()


# The legacy MySQL schema reuses index names across tables (`added`, `deleted`, `type`, ...),
# which MySQL scopes per table but SQLite does not: on SQLite, prefix them with the table name.
def sqlite_index_name(index) -> str:
    prefix = f"{index.table.name}_"
    return index.name if index.name.startswith(prefix) else prefix + index.name


@compiles(CreateIndex, "sqlite")
def _create_index_sqlite(create, compiler, **kw):
    index = create.element
    unique = "UNIQUE " if index.unique else ""
    columns = ", ".join(compiler.preparer.quote(col.name) for col in index.columns)
    name = compiler.preparer.quote(sqlite_index_name(index))
    table = compiler.preparer.format_table(index.table)
    exists = "IF NOT EXISTS " if create.if_not_exists else ""
    return f"CREATE {unique}INDEX {exists}{name} ON {table} ({columns})"


@compiles(DropIndex, "sqlite")
def _drop_index_sqlite(drop, compiler, **kw):
    index = drop.element
    return f"DROP INDEX {compiler.preparer.quote(sqlite_index_name(index))}"

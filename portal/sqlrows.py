"""Model instances from one hand-written SELECT over several tables, converted as the ORM converts.

For the few hot paths where building the query with the ORM costs more than running it (an agent's
claim): the SQL names its tables and columns through `Columns`, so renames in the models follow, and
each row is read back into model instances with the same database converters the ORM applies
(aware datetimes on SQLite, JSON decoding, ...).
"""

from functools import cache


class Columns:
    """Some fields of one model under a table alias: their SQL, and instances built from their values."""

    def __init__(self, model, alias, fields):
        self.model, self.alias = model, alias
        wanted = {model._meta.get_field(name) for name in fields}
        # In the model's own order, which is how Model.from_db() reads a subset of fields.
        self.fields = [field for field in model._meta.concrete_fields if field in wanted]
        if len(self.fields) != len(wanted):
            raise ValueError(f"Only concrete fields of {model.__name__} can be read: {fields}")
        self.attnames = [field.attname for field in self.fields]

    def __len__(self):
        return len(self.fields)

    @property
    def table(self):
        return self.model._meta.db_table

    def sql(self, connection):
        quote = connection.ops.quote_name
        return ", ".join(f"{self.alias}.{quote(field.column)}" for field in self.fields)

    def column(self, connection, name):
        return f"{self.alias}.{connection.ops.quote_name(self.model._meta.get_field(name).column)}"

    def build(self, connection, values):
        """A model instance (other fields deferred) from this model's values in a row."""
        converted = [
            convert(connection, field, value) for field, value in zip(self.fields, values, strict=True)
        ]
        return self.model.from_db(connection.alias, self.attnames, converted)


def convert(connection, field, value):
    """`value` as read by the database driver, turned into what the ORM would give for `field`."""
    if value is None:
        return None
    expression, converters = _converters(connection.alias, field)
    for converter in converters:
        value = converter(value, expression, connection)
    return value


@cache
def _converters(alias, field):
    from django.db import connections

    connection = connections[alias]
    expression = field.get_col(field.model._meta.db_table)
    return expression, [
        *connection.ops.get_db_converters(expression),
        *expression.get_db_converters(connection),
    ]


def split(row, *parts):
    """Cut a row into consecutive slices, one per `Columns` (or int width) in `parts`, plus the rest."""
    pieces, start = [], 0
    for part in parts:
        width = part if isinstance(part, int) else len(part)
        pieces.append(row[start : start + width])
        start += width
    pieces.append(row[start:])
    return pieces


def prepared_cursor(connection):
    """A cursor for a hot statement run over and over on the same connection.

    On PostgreSQL it binds parameters on the server and prepares each statement it runs, so a
    statement is planned once per connection (Django's own cursors bind on the client and never
    prepare). While Django logs queries (DEBUG, or a test counting them) it is Django's own cursor,
    so the log shows each statement with its parameters.
    """
    if connection.vendor != "postgresql" or connection.queries_logged:
        return connection.cursor()
    connection.ensure_connection()
    connection.validate_thread_sharing()
    return connection.make_cursor(_preparing_cursor_class()(connection.connection))


@cache
def _preparing_cursor_class():
    from django.db.backends.postgresql.base import ServerBindingCursor

    class PreparingCursor(ServerBindingCursor):
        def execute(self, query, params=None, *, prepare=True, **kwargs):
            return super().execute(query, params, prepare=prepare, **kwargs)

    return PreparingCursor


def update_fields(connection, instance, names):
    """Write `names` of a saved instance by its primary key in one prepared statement (no signals);
    returns the number of rows written."""
    fields = tuple(instance._meta.get_field(name) for name in names)
    with prepared_cursor(connection) as cursor:
        cursor.execute(
            _update_statement(connection.alias, type(instance), fields),
            [*_prepared_values(connection, instance, fields), instance.pk],
        )
        return cursor.rowcount


def insert(connection, instance):
    """Insert an unsaved instance (every concrete field but an auto primary key) in one prepared
    statement (no signals), setting its primary key."""
    fields = tuple(field for field in instance._meta.concrete_fields if not field.primary_key)
    returning = connection.features.can_return_columns_from_insert
    with prepared_cursor(connection) as cursor:
        cursor.execute(
            _insert_statement(connection.alias, type(instance), fields, returning),
            _prepared_values(connection, instance, fields),
        )
        instance.pk = cursor.fetchone()[0] if returning else cursor.lastrowid
    instance._state.adding, instance._state.db = False, connection.alias
    return instance


def _prepared_values(connection, instance, fields):
    return [field.get_db_prep_save(getattr(instance, field.attname), connection) for field in fields]


@cache
def _update_statement(alias, model, fields):
    from django.db import connections

    quote = connections[alias].ops.quote_name
    assignments = ", ".join(f"{quote(field.column)} = %s" for field in fields)
    return f"UPDATE {quote(model._meta.db_table)} SET {assignments} WHERE {quote(model._meta.pk.column)} = %s"  # noqa: S608 (names from the models; values are parameters)


@cache
def _insert_statement(alias, model, fields, returning):
    from django.db import connections

    quote = connections[alias].ops.quote_name
    columns = ", ".join(quote(field.column) for field in fields)
    values = ", ".join("%s" for _ in fields)
    statement = f"INSERT INTO {quote(model._meta.db_table)} ({columns}) VALUES ({values})"  # noqa: S608 (names from the models; values are parameters)
    return statement + f" RETURNING {quote(model._meta.pk.column)}" if returning else statement

from django.db import migrations

# portal_json_quote(text) is the JSON string Python's json.dumps(text) writes (ensure_ascii: every
# character outside printable ASCII escaped as \uXXXX, astral ones as surrogate pairs, lowercase hex).
# It lets PostgreSQL write an audit event whose canonical form holds text it read itself (an agent's
# claim: crates.claiming), hashing exactly what portal.audit.AuditEvent.compute_hash() will.
JSON_QUOTE_SQL = r"""
CREATE OR REPLACE FUNCTION portal_json_quote_escaping(value text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
SELECT '"' || (
        SELECT string_agg(
            CASE
                WHEN c = '"' THEN E'\\"'
                WHEN c = E'\\' THEN E'\\\\'
                WHEN c = E'\b' THEN E'\\b'
                WHEN c = E'\f' THEN E'\\f'
                WHEN c = E'\n' THEN E'\\n'
                WHEN c = E'\r' THEN E'\\r'
                WHEN c = E'\t' THEN E'\\t'
                WHEN ascii(c) BETWEEN 32 AND 126 THEN c
                WHEN ascii(c) < 65536 THEN E'\\u' || lpad(to_hex(ascii(c)), 4, '0')
                ELSE E'\\u' || to_hex(55296 + ((ascii(c) - 65536) >> 10))
                    || E'\\u' || to_hex(56320 + ((ascii(c) - 65536) & 1023))
            END,
            '' ORDER BY n
        )
        FROM regexp_split_to_table(value, '') WITH ORDINALITY AS chars(c, n)
    ) || '"'
$$;

-- Printable ASCII but for the quote and the backslash is quoted as it is; anything else character by
-- character. One expression, not STRICT, so that PostgreSQL inlines it into the calling statement.
CREATE OR REPLACE FUNCTION portal_json_quote(value text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
SELECT CASE
    WHEN value ~ E'^[ !#-\\[\\]-~]*$' THEN '"' || value || '"'
    ELSE portal_json_quote_escaping(value)
END
$$;
"""
DROP_SQL = """
DROP FUNCTION IF EXISTS portal_json_quote(text);
DROP FUNCTION IF EXISTS portal_json_quote_escaping(text);
"""


def create_function(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(JSON_QUOTE_SQL)


def drop_function(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP_SQL)


class Migration(migrations.Migration):
    dependencies = [("portal", "0006_workflow_service_settings")]

    operations = [migrations.RunPython(create_function, drop_function)]

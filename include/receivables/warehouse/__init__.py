"""The warehouse: schema, migrations, engine creation and the SQL file runner."""

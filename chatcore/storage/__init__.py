"""Everything stored in the one DuckDB file: connection, migrations and the tables' queries."""

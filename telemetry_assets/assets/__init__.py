"""One module per asset group, named like the group, its DuckDB schema and its SQL folder."""

"""The pseudonymised DuckDB warehouse (issue #5): models, nightly load, restricted zone. See docs/warehouse.md."""

"""Data quality: the order's rules as suites and SQL checks, results per reporter, reports (docs/quality.md)."""

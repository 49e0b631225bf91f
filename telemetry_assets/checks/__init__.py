"""Data quality: SQL audits over each table (audits.py), the published contract as
great-expectations suites (contracts.py), pandera models of the frames that cross into Python
(schemas.py), and the Dagster asset checks built from the first two (asset_checks.py)."""

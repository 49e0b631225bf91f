"""The availability dashboard: built from the published tables, served or written as one file."""

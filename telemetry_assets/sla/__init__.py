"""Monthly partner SLA statements: figures, frozen versions, rendering (docs/statements.md)."""

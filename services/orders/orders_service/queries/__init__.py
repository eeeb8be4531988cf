"""The read side's lookups, one module per topic: module-level functions taking a connection
and returning rows or records. Routes call them (on a connection of
`salesplatform.projections.reading`, whose search path is the projection's) and shape the
answer; command handlers, the visit reactor and the history import call them for what they read
besides aggregates, inside their transaction (naming the active generation's schema)."""

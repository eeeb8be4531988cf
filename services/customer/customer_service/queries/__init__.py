"""The read side's lookups, one module per topic: module-level functions taking a connection
and returning rows. Routes call them (on a connection of `salesplatform.projections.reading`,
whose search path is the projection's) and shape the answer; command handlers call them for what
they read besides aggregates, inside the command's transaction (naming the active generation's
schema themselves)."""

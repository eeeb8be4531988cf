"""The visit service: the field work of the sales department (routes, visits, approvals,
surveys, key-account reports, complaints)."""

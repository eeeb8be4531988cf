"""The reporting service: targets, reports and the KPI board, built from the log."""

"""The sales console: what managers and supervisors see in a browser."""

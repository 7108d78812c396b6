"""The ``ranch`` command: read, explain and act on Ranch backlogs in Redis, without Python.

``main.py`` parses the command line and maps failures to exit codes;
``connect.py`` opens the storage of a backlog; ``read.py`` (backlogs,
status, keys, key), ``why.py`` and ``act.py`` (pause, resume, purge,
set-weight, set-limit, set-rate) each print a table or, with ``--json``,
JSON; ``tables.py`` lays tables out. ``serving.py`` runs the two servers:
``exporter.py`` (Prometheus) and ``dashboard/``; ``access.py`` holds their
rules (loopback by default, tokens).
"""

"""Incidents: opened by ``POST /v1/rca`` or by alerts, analysed by a bounded worker pool,
kept in a SQL database (SQLite by default, any SQLAlchemy URL).

- :mod:`rca.incidents.store`: the incident table, its migrations, the queue operations.
- :mod:`rca.incidents.alerts`: Grafana (version "1") and Alertmanager (version "4") webhook
  payloads -> alert events (pure).
- :mod:`rca.incidents.analysis`: one analysis, window in, JSON-able result out (pure).
- :mod:`rca.incidents.sources`: where windows come from (the in-process window store, or
  the ingest workers' ``/window`` endpoint).
- :mod:`rca.incidents.workers`: the worker pool that claims queued incidents.
- :mod:`rca.incidents.service`: what the API routes call.
"""

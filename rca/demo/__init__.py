"""``rca demo``: a demo stack with real telemetry, a real fault, an incident and its RCA.

:mod:`rca.demo.lab` runs the live parts (the tansu broker, an ingest consumer filling a window
store, a stack from :mod:`services` with its load generator, fault injection);
:mod:`rca.demo.watcher` is the SLO watcher that opens the incident; :mod:`rca.demo.session`
is the story ``rca demo`` tells, end to end.
"""

"""``rca demo``: a demo stack with real telemetry, a real fault, an incident and its RCA.

:mod:`services.demo.lab` runs the live parts (the tansu broker, an ingest consumer filling a
window store, a stack with its load generator, fault injection); the SLO watcher that opens the
incident is :mod:`rca.detect.slo` with the stack's rules (:mod:`services.slo`);
:mod:`services.demo.session` is the story ``rca demo`` tells, end to end. The ``rca`` command
line finds the subcommand through the entry point ``demo`` in the group ``rca.commands``
(:func:`services.demo.command.add_parser`).
"""

"""Ingest: OTLP records from Kafka -> series samples -> the window store.

``otlp_decode`` (pure: bytes in, samples out), ``histograms`` and ``counters`` (pure math on
arrays), ``kafka_source`` (the consumer-group member: the only module here that does I/O).
"""

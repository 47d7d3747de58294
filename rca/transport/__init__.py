"""Kafka transport: the one-machine broker, topics, and seeking by time on any broker."""

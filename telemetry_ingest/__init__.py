"""Getting events into the landing folder: the HTTP receiver (events and OTLP traces) and the
Kafka consumer, both validating with the pipeline's rules and writing files durably."""

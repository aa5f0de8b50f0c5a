"""Data sources and ingestion: feeds, validation, Kafka publisher, lake lander, Flume config."""

"""The Kafka plumbing of the stages (stores first; see issue 18)."""

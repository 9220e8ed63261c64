"""Local authorities (อปท.): the HTTP ingest API that turns their updates into ``localgov.update`` events."""

"""Thai QM connector: the API contract (openapi.yaml), its poller, and export-file import."""

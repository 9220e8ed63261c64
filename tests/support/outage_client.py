"""A real ClickHouse client whose inserts fail as if the server were unreachable, when a subclass says so."""

from typing import Any

from clickhouse_connect.driver.exceptions import OperationalError


class OutageClient:
    """Every insert — rows (``insert``) or encoded data (``raw_insert``, the loader's Avro batches) —
    first asks ``_outage()``: a reason fails it as a lost connection would; None lets it through."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def _outage(self) -> str | None:
        raise NotImplementedError

    def insert(self, *args: Any, **kwargs: Any) -> Any:
        self._refuse_in_outage()
        return self._client.insert(*args, **kwargs)

    def raw_insert(self, *args: Any, **kwargs: Any) -> Any:
        self._refuse_in_outage()
        return self._client.raw_insert(*args, **kwargs)

    def _refuse_in_outage(self) -> None:
        reason = self._outage()
        if reason is not None:
            raise OperationalError(reason)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

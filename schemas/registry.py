"""Minimal Confluent Schema Registry client (the two calls the codec needs).

Speaks the REST API that Confluent Schema Registry, Karapace and Apicurio's ccompat layer share.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"


class RegistryError(RuntimeError):
    pass


class SchemaRegistry:
    def __init__(self, url: str, timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout

    def register(self, subject: str, schema_text: str) -> int:
        """Register (or look up, if already registered) a schema under a subject; returns its id."""
        path = f"/subjects/{urllib.parse.quote(subject, safe='')}/versions"
        return int(self._call("POST", path, {"schema": schema_text, "schemaType": "AVRO"})["id"])

    def schema_text(self, schema_id: int) -> str:
        return str(self._call("GET", f"/schemas/ids/{schema_id}", None)["schema"])

    def _call(self, method: str, path: str, body: dict[str, Any] | None) -> dict[str, Any]:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Content-Type": CONTENT_TYPE, "Accept": CONTENT_TYPE})
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                return json.loads(resp.read())
        except urllib.error.HTTPError as e:
            detail = e.read().decode(errors="replace")[:300]
            raise RegistryError(f"schema registry {method} {path}: HTTP {e.code}: {detail}") from e
        except (urllib.error.URLError, TimeoutError, OSError) as e:
            raise RegistryError(f"schema registry {self.url} unreachable: {e}") from e

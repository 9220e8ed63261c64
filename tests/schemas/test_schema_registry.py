"""The codec against a Schema Registry: a loopback HTTP server speaking the registry's REST API."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from schemas.codec import Codec
from schemas.examples import example_paths, load_example
from schemas.registry import RegistryError, SchemaRegistry


class Registry(BaseHTTPRequestHandler):
    schemas: dict[str, int] = {}
    subjects: dict[str, list[int]] = {}

    def _reply(self, code: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/vnd.schemaregistry.v1+json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:  # POST /subjects/{subject}/versions
        subject = self.path.split("/")[2]
        schema = json.loads(self.rfile.read(int(self.headers["Content-Length"])))["schema"]
        sid = self.schemas.setdefault(schema, 100 + len(self.schemas))
        self.subjects.setdefault(subject, []).append(sid)
        self._reply(200, {"id": sid})

    def do_GET(self) -> None:  # GET /schemas/ids/{id}
        sid = int(self.path.rsplit("/", 1)[1])
        for schema, known in self.schemas.items():
            if known == sid:
                return self._reply(200, {"schema": schema})
        self._reply(404, {"error_code": 40403, "message": "Schema not found"})

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def registry_url():
    Registry.schemas, Registry.subjects = {}, {}
    server = ThreadingHTTPServer(("127.0.0.1", 0), Registry)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def test_ids_come_from_the_registry_and_subjects_follow_the_topic(registry_url):
    producer = Codec(registry=SchemaRegistry(registry_url))
    record = load_example(example_paths("alert")[0])
    data = producer.encode("alert", record)
    assert int.from_bytes(data[1:5], "big") == 100
    assert Registry.subjects == {"povhub.alert.v1-value": [100]}
    # a consumer that never registered anything resolves the id through the registry
    consumer = Codec(registry=SchemaRegistry(registry_url))
    assert consumer.decode(data, "alert")["alert_id"] == record["alert_id"]


def test_an_unreachable_registry_is_a_clear_error():
    codec = Codec(registry=SchemaRegistry("http://127.0.0.1:9", timeout=1))
    with pytest.raises(RegistryError, match="unreachable"):
        codec.encode("alert", load_example(example_paths("alert")[0]))

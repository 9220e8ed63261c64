"""API keys of the local authorities: stored hashed, each bound to one authority and its areas.

A key is ``pvh_<key id>_<secret>`` with 256 random bits of secret. The store (a JSON file) keeps
only its SHA-256: a slow password hash buys nothing for a secret that cannot be guessed, and a
fast one keeps each request cheap. The key id, which is not secret, finds the record; the hashes
are compared in constant time. The file is re-read when it changes, so a revocation made with
``povhub ingest-api keys revoke`` takes effect on a running API at its next request.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets
import tempfile
import threading
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from connectors.areas import known_area_code
from connectors.localgov.events import Authority

_KEY = re.compile(r"^pvh_([0-9a-f]{8})_[A-Za-z0-9_-]{43}$")
_ORG_CODE = re.compile(r"^\d{7}$")
# The Avro OrgType symbols, and the Thai names people type on the command line.
ORG_TYPES = {"PAO": "PAO", "อบจ.": "PAO", "MUNICIPALITY": "MUNICIPALITY", "เทศบาล": "MUNICIPALITY",
             "SAO": "SAO", "อบต.": "SAO", "SPECIAL": "SPECIAL", "กทม.": "SPECIAL", "พัทยา": "SPECIAL"}


class KeyStoreError(ValueError):
    pass


@dataclass(frozen=True)
class ApiKey:
    key_id: str
    sha256: str
    org_code: str
    org_type: str
    areas: tuple[str, ...]  # DOPA province, district or sub-district codes the authority serves
    label: str
    created_at: str
    revoked_at: str | None = None

    @property
    def authority(self) -> Authority:
        return Authority(self.org_code, self.org_type, self.areas)

    def serves(self, subdistrict: str) -> bool:
        return any(subdistrict.startswith(area) for area in self.areas)


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class KeyStore:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._cached: tuple[int, dict[str, ApiKey]] | None = None  # (file mtime_ns, keys by id)

    def _load(self) -> dict[str, ApiKey]:
        with self._lock:
            try:
                mtime = self.path.stat().st_mtime_ns
            except FileNotFoundError:
                return {}
            if self._cached is None or self._cached[0] != mtime:
                doc = json.loads(self.path.read_text(encoding="utf-8"))
                keys = {k["key_id"]: ApiKey(**{**k, "areas": tuple(k["areas"])}) for k in doc["keys"]}
                self._cached = (mtime, keys)
            return self._cached[1]

    def _save(self, keys: dict[str, ApiKey]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        doc = {"version": 1, "keys": [asdict(k) for k in keys.values()]}
        # Write aside and rename: a running API never reads a half-written file.
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".keys-")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(doc, f, ensure_ascii=False, indent=2)
        os.chmod(tmp, 0o600)
        os.replace(tmp, self.path)

    def list(self) -> list[ApiKey]:
        return list(self._load().values())

    def add(self, org_code: str, org_type: str, areas: list[str], label: str = "") -> tuple[ApiKey, str]:
        """Create a key; returns its record and the clear key, which is shown once and never stored."""
        if not _ORG_CODE.match(org_code):
            raise KeyStoreError(f"--org: a DLA organisation code has 7 digits, got {org_code!r}")
        if org_type not in ORG_TYPES:
            raise KeyStoreError(f"--type: expected one of {', '.join(ORG_TYPES)}, got {org_type!r}")
        if not areas:
            raise KeyStoreError("--areas: name at least one province, district or sub-district code")
        unknown = [a for a in areas if not known_area_code(a)]
        if unknown:
            raise KeyStoreError(f"--areas: {unknown[0]!r} is not a DOPA province (2 digits), district (4) "
                                "or sub-district (6) code")
        keys = dict(self._load())
        key_id = secrets.token_hex(4)
        while key_id in keys:
            key_id = secrets.token_hex(4)
        clear = f"pvh_{key_id}_{secrets.token_urlsafe(32)}"
        record = ApiKey(key_id, _digest(clear), org_code, ORG_TYPES[org_type], tuple(dict.fromkeys(areas)),
                        label, _now())
        keys[key_id] = record
        self._save(keys)
        return record, clear

    def revoke(self, key_id: str) -> ApiKey:
        keys = dict(self._load())
        if key_id not in keys:
            raise KeyStoreError(f"no key with id {key_id!r} (see `povhub ingest-api keys list`)")
        if keys[key_id].revoked_at is None:
            keys[key_id] = replace(keys[key_id], revoked_at=_now())
            self._save(keys)
        return keys[key_id]

    def authenticate(self, presented: str | None) -> ApiKey | None:
        """The active key matching `presented`, or None."""
        match = _KEY.match(presented or "")
        if match is None:
            return None
        record = self._load().get(match.group(1))
        if record is None or record.revoked_at is not None:
            return None
        return record if hmac.compare_digest(record.sha256, _digest(presented or "")) else None

"""Keyed pseudonyms for citizen IDs: the clear ID never leaves the connector.

HMAC-SHA256 with a secret from the environment: the same person gets the same pseudonym in every
source (so the hub can join them), and without the key nobody can brute-force the 13-digit space.
"""

from __future__ import annotations

import hashlib
import hmac


class Pseudonymiser:
    def __init__(self, secret: str) -> None:
        if len(secret) < 16:
            raise ValueError("the pseudonym secret must be at least 16 characters")
        self._secret = secret
        # Keyed once: each pseudonym copies this state instead of keying a new HMAC (an import
        # computes one per person). The value is hmac.new(key, id, sha256)'s, as tests check.
        self._keyed = hmac.new(secret.encode("utf-8"), digestmod=hashlib.sha256)
        # CPython's OpenSSL HMAC inside it, when there is one: copying that directly skips the
        # Python wrapper's copy (a third of a pseudonym's time); else the wrapper's, the same value
        self._copy = getattr(self._keyed, "_hmac", self._keyed).copy

    def __reduce__(self) -> tuple[type[Pseudonymiser], tuple[str]]:
        # to the process that prepares a large import's events (connectors/tpmap/prepare.py)
        return Pseudonymiser, (self._secret,)

    def __repr__(self) -> str:
        return "Pseudonymiser(<secret>)"  # never the secret, in a log or a traceback

    def person_id(self, citizen_id: str) -> str:
        h = self._copy()
        h.update(citizen_id.encode("ascii"))
        return h.hexdigest()

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
        self._key = secret.encode("utf-8")

    def person_id(self, citizen_id: str) -> str:
        return hmac.new(self._key, citizen_id.encode("ascii"), hashlib.sha256).hexdigest()

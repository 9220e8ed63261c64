"""Officers' logins for the web page: each bound to one ศจพ. level and area.

Stored in a JSON file (POVHUB_WEB_USERS_FILE, default DATA_DIR/web_users.json) with argon2id
password hashes (argon2-cffi, OWASP's first choice for passwords). The file is re-read when it
changes, so `povhub web users add|remove` takes effect on a running server at the next login.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import threading
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from connectors.areas import known_area_code
from schemas.vocabulary import AREA_CODE_LENGTH

CODE_LENGTH = {level: n for level, n in AREA_CODE_LENGTH.items() if level != "village"}  # a user's area
_USERNAME = re.compile(r"^[A-Za-z0-9._@-]{3,64}$")
MIN_PASSWORD = 10
_HASHER = PasswordHasher()
# Verified against when the user is unknown, so an unknown name costs the same time as a wrong password
_DUMMY_HASH = _HASHER.hash("not a password of anyone")


class UserStoreError(ValueError):
    pass


@dataclass(frozen=True)
class Officer:
    username: str
    level: str  # national | province | district | subdistrict
    area: str  # DOPA code of that level; '' for national
    password_hash: str
    created_at: str

    def sees(self, code: str) -> bool:
        """Whether area `code` ('' or 'TH' = the nation) is this officer's area or below it."""
        code = "" if code == "TH" else code
        return code.startswith(self.area)

    @property
    def home(self) -> str:
        return self.area or "TH"


def check_scope(level: str, area: str | None) -> str:
    if level not in CODE_LENGTH:
        raise UserStoreError(f"level must be one of {', '.join(CODE_LENGTH)}, not {level!r}")
    area = (area or "").strip()
    if level == "national":
        if area:
            raise UserStoreError("a national officer has no --area")
        return ""
    if not (area.isascii() and area.isdigit() and len(area) == CODE_LENGTH[level]):
        raise UserStoreError(f"--area must be the {CODE_LENGTH[level]}-digit DOPA code of a {level}, not {area!r}")
    # TPMAP's municipal tambons (last two digits 51 and up) are areas too, under a known district
    municipal = level == "subdistrict" and int(area[4:]) >= 51 and known_area_code(area[:4])
    if not (known_area_code(area) or municipal):
        raise UserStoreError(f"--area {area} is not a known DOPA {level} code")
    return area


class UserStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._cache: tuple[float, dict[str, Officer]] | None = None

    def _load(self) -> dict[str, Officer]:
        try:
            mtime = self.path.stat().st_mtime
        except FileNotFoundError:
            return {}
        with self._lock:
            if self._cache is None or self._cache[0] != mtime:
                data = json.loads(self.path.read_text(encoding="utf-8"))
                self._cache = (mtime, {u["username"]: Officer(**u) for u in data.get("users", [])})
            return self._cache[1]

    def _save(self, users: dict[str, Officer]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        body = json.dumps({"users": [asdict(u) for u in users.values()]}, ensure_ascii=False, indent=2)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".web_users.")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(body)
        os.chmod(tmp, 0o600)
        os.replace(tmp, self.path)

    def list(self) -> list[Officer]:
        return sorted(self._load().values(), key=lambda u: u.username)

    def add(self, username: str, level: str, area: str | None, password: str) -> Officer:
        if not _USERNAME.match(username):
            raise UserStoreError("user name: 3-64 letters, digits or . _ @ -")
        if len(password) < MIN_PASSWORD:
            raise UserStoreError(f"password: at least {MIN_PASSWORD} characters")
        users = dict(self._load())
        if username in users:
            raise UserStoreError(f"user {username} exists (remove it first to change it)")
        officer = Officer(username, level, check_scope(level, area), _HASHER.hash(password),
                          datetime.now(UTC).isoformat(timespec="seconds"))
        users[username] = officer
        self._save(users)
        return officer

    def remove(self, username: str) -> None:
        users = dict(self._load())
        if users.pop(username, None) is None:
            raise UserStoreError(f"no user {username}")
        self._save(users)

    def get(self, username: str) -> Officer | None:
        return self._load().get(username)

    def authenticate(self, username: str, password: str) -> Officer | None:
        """The officer if the password is his; None for a wrong password and an unknown name alike."""
        officer = self._load().get(username)
        try:
            _HASHER.verify(officer.password_hash if officer else _DUMMY_HASH, password)
        except (VerificationError, InvalidHashError):
            return None
        return officer

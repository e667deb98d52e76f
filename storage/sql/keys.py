"""API keys: created once (the key is shown then and never again), stored as a SHA-256 hash,
listed without the key, revoked by name; scopes ``read`` < ``submit`` < ``admin``.

Keys are 256 random bits, so a fast hash is enough (no password stretching needed): knowing the
hash does not help to find the key, and lookups stay one indexed query per request.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from storage.sql.db import Database
from storage.core.errors import NotFound, PermanentError
from storage.sql.schema import api_key

SCOPES = ("read", "submit", "admin")  # each allows what the ones before it allow
PREFIX = "shiti_"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,99}$")
# Writing last_used_at on every request would make reads write; once a minute is enough to tell.
LAST_USED_RESOLUTION_S = 60.0


@dataclass(frozen=True)
class KeyInfo:
    """Who is calling: a key's name and scope (never the key)."""

    name: str
    scope: str
    created_at: float
    last_used_at: float | None = None

    def allows(self, scope: str) -> bool:
        """Whether this key's scope includes ``scope``."""
        return SCOPES.index(self.scope) >= SCOPES.index(scope)


def hash_key(key: str) -> str:
    """The stored form of a key."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def check_scope(scope: str) -> str:
    """``scope`` if it is one of :data:`SCOPES`, else a PermanentError listing them."""
    if scope not in SCOPES:
        raise PermanentError(f"unknown scope {scope!r}: use one of {', '.join(SCOPES)}")
    return scope


def create_key(db: Database, *, name: str, scope: str, key: str | None = None) -> str:
    """Store a new key and return it (the only time it is seen). ``key``: a given value (the
    deployment's admin key from the environment); default 256 random bits.

    Raises:
        PermanentError: bad name, unknown scope, or a key with this name exists.
    """
    check_scope(scope)
    if not _NAME.match(name):
        raise PermanentError(f"bad key name {name!r}: 1-100 letters, digits or . _ @ -, starting with a letter or digit")
    key = key or PREFIX + secrets.token_urlsafe(32)
    try:
        with db.write() as conn:
            conn.execute(insert(api_key).values(name=name, scope=scope, key_hash=hash_key(key),
                                                created_at=time.time()))
    except IntegrityError:
        raise PermanentError(f"a key named {name!r} exists already (revoke it first)") from None
    return key


def ensure_key(db: Database, *, name: str, scope: str, key: str) -> None:
    """Make ``key`` the key named ``name`` (idempotent; a changed value replaces the old one)."""
    check_scope(scope)
    with db.write() as conn:
        row = conn.execute(select(api_key.c.key_hash, api_key.c.scope).where(api_key.c.name == name)).first()
        if row is not None and hmac.compare_digest(row.key_hash, hash_key(key)) and row.scope == scope:
            return
        conn.execute(delete(api_key).where(api_key.c.name == name))
        conn.execute(insert(api_key).values(name=name, scope=scope, key_hash=hash_key(key), created_at=time.time()))


def list_keys(db: Database) -> list[KeyInfo]:
    """Every key's name, scope, creation and last use (oldest first)."""
    with db.read() as conn:
        rows = conn.execute(select(api_key.c.name, api_key.c.scope, api_key.c.created_at, api_key.c.last_used_at)
                            .order_by(api_key.c.id))
        return [KeyInfo(r.name, r.scope, r.created_at, r.last_used_at) for r in rows]


def revoke_key(db: Database, name: str) -> None:
    """Delete the key named ``name``: it is refused from the next request on.

    Raises:
        NotFound: no such key.
    """
    with db.write() as conn:
        if not conn.execute(delete(api_key).where(api_key.c.name == name)).rowcount:
            raise NotFound(f"no key named {name!r}")


def any_keys(db: Database) -> bool:
    """Whether any key exists (the API then requires one on every route)."""
    with db.read() as conn:
        return conn.execute(select(api_key.c.id).limit(1)).first() is not None


def authenticate(db: Database, key: str) -> KeyInfo | None:
    """The key's identity, or None for an unknown (or revoked) key. Records the use."""
    digest = hash_key(key)
    with db.read() as conn:
        row = conn.execute(select(api_key).where(api_key.c.key_hash == digest)).first()
    # The lookup is by hash; comparing the hashes again in constant time costs nothing.
    if row is None or not hmac.compare_digest(row.key_hash, digest):
        return None
    now = time.time()
    if row.last_used_at is None or now - row.last_used_at > LAST_USED_RESOLUTION_S:
        with db.write() as conn:
            conn.execute(update(api_key).where(api_key.c.id == row.id).values(last_used_at=now))
    return KeyInfo(row.name, row.scope, row.created_at, now)

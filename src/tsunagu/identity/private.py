"""The node's private (off-chain) store: accounts, passwords, custodial keys, sessions.

None of this goes on the chain. Custodial private keys are encrypted at rest with
AES-256-GCM under the node's master key (``secrets/master.key``, mode 0600), bound to the
username as associated data so a ciphertext cannot be moved to another account.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from tsunagu.errors import Conflict, Unauthorized
from tsunagu.ledger.keys import SigningKey

PRIVATE_DB = "private.db"
MASTER_KEY = Path("secrets") / "master.key"
SESSION_SECONDS = 12 * 3600

SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    username TEXT PRIMARY KEY,
    display_name TEXT NOT NULL,
    org TEXT NOT NULL,
    roles TEXT NOT NULL,
    key_id TEXT NOT NULL UNIQUE,
    key_box BLOB NOT NULL,
    password_hash TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS sessions (
    token_hash TEXT PRIMARY KEY,
    username TEXT NOT NULL REFERENCES users (username),
    expires_at REAL NOT NULL
);
"""


class BadCredentials(Unauthorized):
    code = "bad_credentials"
    message_en = "The username or password is wrong."
    message_ja = "ユーザー名またはパスワードが正しくありません。"


@dataclass(frozen=True, slots=True)
class User:
    username: str
    display_name: str
    org: str
    roles: tuple[str, ...]
    key_id: str

    def has_role(self, *roles: str) -> bool:
        return "admin" in self.roles or any(r in self.roles for r in roles)


def _hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def load_master_key(data_dir: Path) -> bytes:
    path = data_dir / MASTER_KEY
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(secrets.token_bytes(32))
    return path.read_bytes()


class PrivateStore:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        master = load_master_key(self.data_dir)
        self._aead = AESGCM(master)
        # A separate key for HMACs the web layer needs (CSRF tokens), derived, never the master.
        self.web_secret = hashlib.sha256(b"tsunagu-web-secret\x00" + master).digest()
        self._path = self.data_dir / PRIVATE_DB
        self._local = threading.local()
        self._conn().executescript(SCHEMA)
        self._hasher = PasswordHasher()
        self._keys: dict[str, SigningKey] = {}

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA busy_timeout=10000")
            self._local.conn = conn
        return conn

    # -- accounts ---------------------------------------------------------------------

    def create_user(
        self,
        username: str,
        password: str,
        display_name: str,
        org: str,
        roles: list[str],
        key: SigningKey | None = None,
        password_hash: str | None = None,
    ) -> tuple[User, SigningKey]:
        """Create an account with a fresh custodial key (or ``key``).

        ``password_hash`` lets a caller creating many accounts with one password (the demo)
        hash it once: argon2 is deliberately slow.
        """
        key = key or SigningKey.generate()
        nonce = secrets.token_bytes(12)
        box = nonce + self._aead.encrypt(nonce, key.seed, username.encode())
        try:
            self._conn().execute(
                "INSERT INTO users VALUES (?,?,?,?,?,?,?,?)",
                (
                    username,
                    display_name,
                    org,
                    json.dumps(roles),
                    key.key_id,
                    box,
                    password_hash or self.hash_password(password),
                    time.time(),
                ),
            )
        except sqlite3.IntegrityError as exc:
            raise Conflict(
                f"The account {username} exists.", f"アカウント {username} は既にあります。"
            ) from exc
        return self.user(username), key  # type: ignore[return-value]

    def hash_password(self, password: str) -> str:
        return self._hasher.hash(password)

    def user(self, username: str) -> User | None:
        row = (
            self._conn()
            .execute(
                "SELECT username, display_name, org, roles, key_id FROM users WHERE username = ?",
                (username,),
            )
            .fetchone()
        )
        if row is None:
            return None
        return User(row[0], row[1], row[2], tuple(json.loads(row[3])), row[4])

    def users(self) -> list[User]:
        rows = (
            self._conn()
            .execute("SELECT username, display_name, org, roles, key_id FROM users ORDER BY 1")
            .fetchall()
        )
        return [User(r[0], r[1], r[2], tuple(json.loads(r[3])), r[4]) for r in rows]

    def user_by_key(self, key_id: str) -> User | None:
        row = (
            self._conn()
            .execute("SELECT username FROM users WHERE key_id = ?", (key_id,))
            .fetchone()
        )
        return None if row is None else self.user(row[0])

    def authenticate(self, username: str, password: str) -> User:
        row = (
            self._conn()
            .execute("SELECT password_hash FROM users WHERE username = ?", (username,))
            .fetchone()
        )
        if row is None:
            # Spend the same time as a real check so usernames cannot be probed by timing.
            with contextlib.suppress(VerificationError, InvalidHashError):
                self._hasher.verify(self._dummy_hash(), password)
            raise BadCredentials()
        try:
            self._hasher.verify(row[0], password)
        except (VerificationError, InvalidHashError) as exc:
            raise BadCredentials() from exc
        return self.user(username)  # type: ignore[return-value]

    _dummy: str | None = None

    def _dummy_hash(self) -> str:
        if PrivateStore._dummy is None:
            PrivateStore._dummy = self._hasher.hash(secrets.token_hex(8))
        return PrivateStore._dummy

    def signing_key(self, user: User) -> SigningKey:
        """The user's custodial key, decrypted on first use."""
        key = self._keys.get(user.username)
        if key is None:
            row = (
                self._conn()
                .execute("SELECT key_box FROM users WHERE username = ?", (user.username,))
                .fetchone()
            )
            box = bytes(row[0])
            seed = self._aead.decrypt(box[:12], box[12:], user.username.encode())
            key = SigningKey.from_seed(seed)
            self._keys[user.username] = key
        return key

    # -- sessions ---------------------------------------------------------------------

    def issue_token(self, user: User, seconds: int = SESSION_SECONDS) -> str:
        token = secrets.token_urlsafe(32)
        self._conn().execute(
            "INSERT INTO sessions VALUES (?,?,?)",
            (_hash_token(token), user.username, time.time() + seconds),
        )
        return token

    def user_for_token(self, token: str) -> User | None:
        row = (
            self._conn()
            .execute(
                "SELECT username, expires_at FROM sessions WHERE token_hash = ?",
                (_hash_token(token),),
            )
            .fetchone()
        )
        if row is None or row[1] < time.time():
            return None
        return self.user(row[0])

    def revoke_token(self, token: str) -> None:
        self._conn().execute("DELETE FROM sessions WHERE token_hash = ?", (_hash_token(token),))

"""Keys: generation, the hex/nsec/ncryptsec forms and the key file.

A secret key never reaches a log or a repr; at rest it exists only as a NIP-49 ncryptsec.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from coincurve import PrivateKey

from .errors import ConfigError, DecryptionError, EncodingError, InvalidKey
from .nips import nip19, nip49
from .paths import make_private_dir

__all__ = ["Keys", "save_key_file", "load_key_file"]


@dataclass(frozen=True, slots=True)
class Keys:
    """A secp256k1 key pair with x-only public key (BIP-340)."""

    secret: bytes = field(repr=False)
    public_key: str = field(init=False)

    def __post_init__(self) -> None:
        if len(self.secret) != 32:
            raise InvalidKey("a secret key is 32 bytes")
        try:
            pk = PrivateKey(self.secret).public_key_xonly.format().hex()
        except Exception as exc:
            raise InvalidKey("secret key out of range") from exc
        object.__setattr__(self, "public_key", pk)

    @classmethod
    def generate(cls) -> "Keys":
        while True:
            try:
                return cls(os.urandom(32))
            except InvalidKey:
                continue

    @classmethod
    def from_hex(cls, text: str) -> "Keys":
        try:
            raw = bytes.fromhex(text.strip())
        except ValueError as exc:
            raise InvalidKey("not hex") from exc
        return cls(raw)

    @classmethod
    def parse(cls, text: str) -> "Keys":
        """Read a secret key typed or pasted by a user: ``nsec1…`` (or ``nostr:nsec1…``) or 64 hex."""
        if not isinstance(text, str):
            raise InvalidKey("a secret key is given as nsec or 64 hex characters")
        stripped = "".join(text.split())
        if len(stripped) == 64:
            return cls.from_hex(stripped)
        try:
            decoded = nip19.decode(stripped)
        except EncodingError as exc:
            raise InvalidKey(f"not an nsec or 64-hex secret key ({exc})") from None
        if decoded.hrp != "nsec":
            raise InvalidKey(f"expected an nsec or 64-hex secret key, got {decoded.hrp}")
        return cls(decoded.data)

    @classmethod
    def from_ncryptsec(cls, text: str, password: str) -> "Keys":
        return cls(nip49.decrypt(text.strip(), password))

    def to_ncryptsec(
        self, password: str, log_n: int = 16, key_security: int = nip49.KEY_SECURITY_UNTRACKED
    ) -> str:
        return nip49.encrypt(self.secret, password, log_n, key_security)

    @property
    def secret_hex(self) -> str:
        return self.secret.hex()

    @property
    def nsec(self) -> str:
        return nip19.nsec_encode(self.secret)

    @property
    def npub(self) -> str:
        return nip19.npub_encode(self.public_key)

    def __repr__(self) -> str:
        return f"Keys(public_key={self.public_key!r})"


_KEY_FILE_HINT = "create one with `nostr-training keys generate`"


def save_key_file(
    path: str | os.PathLike[str], keys: Keys, password: str, *, log_n: int = 16, overwrite: bool = False
) -> Path:
    """Write the key as one ncryptsec line, mode 0600, atomically; never the plain secret.

    A missing parent directory is created 0700. An existing file is kept unless ``overwrite``.
    """
    target = Path(path)
    if target.exists() and not overwrite:
        raise ConfigError(f"key file {target} already exists; refusing to overwrite it")
    if not password:
        raise ConfigError("an empty password would leave the key file unprotected")
    text = keys.to_ncryptsec(password, log_n) + "\n"
    try:
        _write_private(target, text, overwrite)
    except FileExistsError:
        raise ConfigError(f"key file {target} already exists; refusing to overwrite it") from None
    except OSError as exc:
        raise ConfigError(f"cannot write key file {target}: {exc.strerror or exc}") from None
    return target


def _write_private(target: Path, text: str, overwrite: bool) -> None:
    """Write via a 0600 temp file in the same directory, then rename (or hard-link if no-clobber)."""
    parent = target.parent
    if not parent.exists():
        make_private_dir(parent)
    fd, tmp_name = tempfile.mkstemp(prefix=".key-", suffix=".tmp", dir=parent)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            os.fchmod(handle.fileno(), 0o600)
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        if overwrite:
            os.replace(tmp_name, target)
        else:
            os.link(tmp_name, target)
    finally:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)


def load_key_file(path: str | os.PathLike[str], password: str) -> Keys:
    """Read and decrypt a key file written by ``save_key_file``."""
    target = Path(path)
    try:
        text = target.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        raise ConfigError(f"no key file at {target}; {_KEY_FILE_HINT}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read key file {target}: {exc}") from None
    if not text.startswith("ncryptsec1"):
        raise ConfigError(f"key file {target} does not hold an ncryptsec; {_KEY_FILE_HINT}")
    try:
        return Keys.from_ncryptsec(text, password)
    except DecryptionError as exc:
        raise ConfigError(f"cannot unlock key file {target}: {exc}") from None

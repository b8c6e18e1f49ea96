"""GitHub's webhook signature: `X-Hub-Signature-256: sha256=<hex>`, the HMAC-SHA256 of
the raw body keyed with the webhook's secret (GitHub Docs, "Validating webhook
deliveries"). The body is hashed as it arrives, so a large one is never held twice, and
the comparison takes the same time whatever the first differing byte.
"""

from __future__ import annotations

import hashlib
import hmac

from multivac.config import Secret

HEADER = "x-hub-signature-256"
PREFIX = "sha256="


class Signature:
    """The running HMAC of one body under the webhook secret."""

    def __init__(self, secret: Secret) -> None:
        self._mac = hmac.new(secret.reveal().encode("utf-8"), digestmod=hashlib.sha256)

    def update(self, chunk: bytes) -> None:
        self._mac.update(chunk)

    def header(self) -> str:
        """The header value GitHub sends for this body."""
        return PREFIX + self._mac.hexdigest()

    def matches(self, header: str | None) -> bool:
        """Whether the header is `sha256=` and this body's digest (constant time)."""
        if not header:
            return False
        expected = self.header()
        # compare_digest needs ASCII on both sides: a non-ASCII header cannot match anyway
        given = header.strip().encode("ascii", "replace")
        return hmac.compare_digest(expected.encode("ascii"), given)


def sign(secret: Secret, body: bytes) -> str:
    """The header value GitHub would send for this body (for tests and benchmarks)."""
    signature = Signature(secret)
    signature.update(body)
    return signature.header()

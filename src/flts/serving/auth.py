"""The API's bearer-token check, shared by /predict, /model(s) and the live page's state."""

from __future__ import annotations

import hmac
from collections.abc import Callable

from pydantic import SecretStr

TokenCheck = Callable[[bytes | None], bool]


def bearer_check(token: SecretStr | None) -> TokenCheck:
    """A check of an ``Authorization`` header against API_TOKEN; everything passes without one.

    Constant-time comparison, so the time to refuse says nothing about how much of a guess
    was right.
    """
    if token is None:
        return lambda _header: True
    expected = f"Bearer {token.get_secret_value()}".encode()

    def check(header: bytes | None) -> bool:
        return header is not None and hmac.compare_digest(header, expected)

    return check

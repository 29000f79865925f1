"""The admin token that API writes need: created on first start, kept in the store or the state dir.

Kuma bootstraps an admin user token on the leader (plugins/authn/api-server/tokens/
admin_token_bootstrap.go) and keeps it in a global secret; ``kumactl`` sends it as a Bearer token.
meshxds keeps an opaque random token in the store's state under ``admin-token``.
"""

from __future__ import annotations

import hmac
import secrets

from meshxds.store.model import Store

STATE_NAME = "admin-token"


async def admin_token(store: Store) -> str:
    """The token, created when absent (a concurrent creator's token wins: re-read after writing)."""
    state = await store.get_state(STATE_NAME)
    if state and isinstance(state.get("token"), str):
        return str(state["token"])
    await store.put_state(STATE_NAME, {"token": secrets.token_urlsafe(32)})
    state = await store.get_state(STATE_NAME)
    assert state is not None
    return str(state["token"])


def bearer_matches(header: str | None, token: str) -> bool:
    if not header or not header.startswith("Bearer "):
        return False
    return hmac.compare_digest(header[len("Bearer ") :].strip(), token)

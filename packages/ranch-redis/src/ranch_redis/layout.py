"""Where a namespace keeps its data in Redis, and how a task is stored.

Every Redis key of namespace ``ns`` starts with ``ranch:{ns}:``; the braces
make ``ns`` the hash tag, so one namespace lives in one cluster slot and
different namespaces spread over the cluster.

======================  ======  =============================================
Redis key               type    content
======================  ======  =============================================
``…stats``              hash    ``seq`` (serve sequence = served total),
                                ``vt`` (virtual time), ``expired`` counter;
                                waiting = HLEN tasks - ZCARD leases
``…active``             zset    one member per key with waiting tasks:
                                score = pass, member = ``%016x(seq)`` + hex key
``…leases``             zset    leased task ids, score = lease deadline
``…tasks``              hash    task id -> body (waiting and leased tasks)
``…q:<hex key>``        list    the key's waiting task ids, head first
``…k:<hex key>``        hash    ``p`` pass, ``s`` serve seq, ``w`` weight,
                                ``l`` last served, ``n`` served total,
                                ``t:<name>`` tags, ``d:<name>`` custom data
``…tag:<hex name>``     hash    key -> tag value (index for ``keys_with_tag``)
======================  ======  =============================================

A user key appears in Redis key names only as the lowercase hex of its UTF-8
bytes: no character of it can end the hash tag or the prefix, two keys never
share a name, and hex keeps the byte order, so the ``active`` members of equal
score and equal serve sequence sort exactly like the keys (code point order).
"""

from __future__ import annotations

from typing import Optional, Tuple

from ranch_core import validation

#: Prefix of every Redis key Ranch writes.
PREFIX = "ranch"


def check_namespace(namespace: object) -> str:
    """A namespace is a non-empty UTF-8 string without ``{`` or ``}`` (it is the hash tag)."""
    checked = validation.check_key(namespace, "namespace")
    if "{" in checked or "}" in checked:
        raise ValueError(f"namespace must not contain '{{' or '}}' (it is the hash tag): {checked!r}")
    return checked


def base(namespace: str) -> str:
    """The prefix of every Redis key of ``namespace``: ``ranch:{<namespace>}:``."""
    return f"{PREFIX}:{{{namespace}}}:"


def hex_key(key: str) -> str:
    """The encoding of a user key inside Redis key names (order-preserving)."""
    return key.encode("utf-8").hex()


def float_arg(value: float) -> str:
    """A float as a script argument that parses back to the same double."""
    return repr(float(value))


def encode_body(key_hex: str, enqueued_at: float, expires_at: Optional[float], data: bytes) -> bytes:
    """``<enqueued_at>,<expires_at or empty>,<hex key>,<payload bytes>``."""
    expires = b"" if expires_at is None else float_arg(expires_at).encode()
    return b"%s,%s,%s,%s" % (float_arg(enqueued_at).encode(), expires, key_hex.encode(), data)


def decode_body(body: bytes) -> Tuple[str, float, Optional[float], bytes]:
    """``(key, enqueued_at, expires_at, payload bytes)``; ``ValueError`` if corrupt."""
    try:
        enqueued, expires, key_hex, data = body.split(b",", 3)
        key = bytes.fromhex(key_hex.decode("ascii")).decode("utf-8")
        return key, float(enqueued), (float(expires) if expires else None), data
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"corrupt task body: {exc}") from None

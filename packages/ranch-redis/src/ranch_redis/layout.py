"""Where a namespace keeps its data in Redis, how a task is stored, and what scripts answer.

Every Redis key name and every script reply code is spelled here (and, for
the scripts, in ``scripts/common.lua``, which receives the reply codes from
this module when it is loaded): no other Python module builds a key name.

Every Redis key of namespace ``ns`` starts with ``ranch:{ns}:``; the braces
make ``ns`` the hash tag, so one namespace lives in one cluster slot and
different namespaces spread over the cluster.

======================  ======  =============================================
Redis key               type    content
======================  ======  =============================================
``…stats``              hash    ``seq`` (serve sequence = served total),
                                ``vt`` (virtual time), ``expired`` counter,
                                ``rc`` (the repair sweep's ``SSCAN`` cursor);
                                per-key controls: ``ctl`` (``1`` once any
                                control was set or a delayed call stored:
                                steps then read the fields below and count
                                ``…delayed``), ``dl`` default concurrency
                                limit, ``dr``/``db``/``dt`` default rate
                                (calls a second, burst, text), ``nr`` waiting
                                calls not counted runnable, ``np`` parked
                                keys, ``ck`` latest time a step was given;
                                ``xm`` ready keys beyond one per group in
                                ``…active`` (written once pairs are used)
``…active``             zset    one member per group with a ready key (a
                                key with waiting tasks that may run; parked
                                keys are not ready): score = the group's
                                pass, member = ``%016x(seq)`` + hex group
``…m:<hex group>``      zset    the group's ready keys while one of them is
                                a pair (``gr`` > 0): score = the key's pass
                                among the members, member = ``%016x(seq)``
                                + hex member (``''`` for the group's own
                                string key); absent while the group's only
                                ready key is its own (it is ready iff the
                                group is in ``…active``)
``…g:<hex group>``      set     hex members of the group's pairs that ever
                                stored a call (the string key's metadata
                                sums over them)
``…parked``             zset    keys parked by their rate: score = the time
                                their bucket refills, member = hex key
``…delayed``            zset    delayed calls not yet due: score = due
                                time, member = task id (body in ``…tasks``)
``…d:<hex key>``        zset    the key's part of ``…delayed`` (its count,
                                ``purge_key``)
``…keys``               set     hex keys whose list holds task ids (walked
                                by the repair sweep)
``…leases``             zset    leased task ids, score = lease deadline
``…st``                 hash    leased task id -> when its run started (for
                                the run-time metric; gone with the lease)
``…tasks``              hash    task id -> body (waiting and leased tasks)
``…expiry``             zset    waiting tasks that expire: score = expires_at,
                                member = task id
``…q:<hex key>``        list    the key's waiting task ids, head first
``…x:<hex key>``        zset    the key's waiting tasks that expire (as
                                ``…expiry``, for its pending count)
``…k:<hex key>``        hash    ``p`` pass, ``s`` serve seq, ``w`` weight,
                                ``l`` last served, ``n`` served total (a
                                string key's: its group's; a pair's: its
                                own among its group's members); a string
                                key's also ``gv`` its group's virtual time,
                                ``gr`` its group's ready pairs, ``mp``/``ms``
                                its own pass and seq among the members (its
                                member weight is 1); ``r`` calls leased now,
                                ``t:<name>`` tags, ``d:<name>`` custom data;
                                controls: ``cl`` concurrency limit,
                                ``rr``/``rb``/``rt`` rate, ``ps`` paused,
                                ``mb`` max backlog, ``ta`` bucket's arrival
                                time under ``br``/``bb``/``bt``, ``pk`` why
                                parked (``p``/``c``/``r``), ``ea`` when it
                                refills, ``ct`` calls counted runnable
``…tag:<hex name>``     hash    key -> tag value (index for ``keys_with_tag``)
``…wf``                 zset    wake-up tokens in flight, score = deadline
``…wh``                 zset    wake-up tokens held by workers, score = deadline
``…wb``                 hash    held token -> the task id it runs (``''``:
                                kept between two calls of a run budget)
``…wt``                 hash    task id -> the token held for it (``extend``)
``…ww``                 zset    workers that registered their slots, score =
                                registration deadline
``…wn``                 hash    registered worker -> its slots (concurrency)
``…wd``                 zset    deferred wake-up tokens (no two due at one
                                time), score = the time each is due
``…wq``                 hash    ``moved``: when a wake-up was last taken from
                                the broker; ``rounds``, ``retired``: lost-token
                                retirements since then, and the last one's time
``…wake``               list    notifications for blocked pops: every step
                                that makes calls runnable pushes one mark per
                                call (at most ``NOTIFY_BOUND`` kept);
                                waiters block on it (``BLPOP``, ``wait.lua``)
``…kw``                 zset    keys by their waiting calls: score = the
                                length of the key's list, member = hex key
                                (keys with none are left out): ``ranch keys``
                                and the exporter's top keys read a page of it
``…kn``                 zset    keys by calls served: score = the key's
                                ``n``, member = hex key
======================  ======  =============================================

One Redis key lies outside every namespace: ``ranch:backlogs`` (set), the
registry of namespaces that ever stored a call, written by each pushing
storage at its first push and at most once a minute after (one ``SADD``),
so ``ranch backlogs`` lists them without scanning the keyspace.

Waiting = ``HLEN tasks - ZCARD leases`` (``- ZCARD delayed`` once ``ctl``
is set); minus ``ZCOUNT expiry -inf now`` when the caller gives ``now``.
Runnable (what wake-up tokens are minted for) = waiting - ``nr``. Active
keys = ``ZCARD active + xm + np``.

A user key appears in Redis key names only as the lowercase hex of its UTF-8
bytes: no character of it can end the hash tag or the prefix, two keys never
share a name, and hex keeps the byte order, so the ``active`` members of equal
score and equal serve sequence sort exactly like the keys (code point order).
A pair ``(group, member)`` is ``<hex group>:<hex member>`` wherever a key's
hex is (key names, task bodies, indexes); hex has no ``:``, so it never
collides with a string key. Two-level selection (ranch-core README,
"Two-level keys"): pop takes the first group of ``active``, then the first
key of its ``m:`` zset (the own string key when the group has no ready
pair); a string key ``k`` is the own member (hex ``''``, first among ties)
of group ``k``, and its hash ``k:<hex k>`` holds the group's state too, so
a key space of strings keeps the one-level layout (no ``m:`` zset) and the
same commands per step. In a tag index a pair's field is the
byte ``0xff`` (never in UTF-8 text) then its hex key.
"""

from __future__ import annotations

from typing import Dict, Optional, Tuple, Union

from ranch_core import validation
from ranch_core.keys import Key

#: Prefix of every Redis key Ranch writes.
PREFIX = "ranch"

# -- script replies --------------------------------------------------------
# Written into the scripts as __NAME__ when they are loaded (see REPLIES).

#: push: stored.
PUSH_STORED = 1
#: push: a retry found its own earlier write (the identical body).
PUSH_ALREADY_STORED = 2
#: push: the task id is already waiting or leased; nothing written.
PUSH_DUPLICATE = 0
#: push: the key's ``max_backlog`` would be passed; nothing written
#: (``reply[1]`` waiting calls, ``reply[2]`` the limit).
PUSH_FULL = 3

#: pop: ``reply[1]`` is the leased task.
POP_SERVED = 1
#: pop: no call may start now (``reply[1]``: the time a key parked by its
#: rate becomes eligible, or ``''``; ``reply[2]``: ``'1'`` if the token was
#: deferred until then).
POP_EMPTY = 0
#: pop: stopped early after ``EXPIRED_BATCH`` dropped tasks; pop again.
POP_AGAIN = 2
#: pop: the wake-up token may not pop (held for a running task, or stale
#: while ``max_wakeups`` are outstanding); nothing done.
POP_STALE = 3

#: finish, release_token: the token is in flight again; publish it.
TOKEN_PASSED = 1
#: finish: the token stays held by the caller (``keep_token``).
TOKEN_KEPT = 2
#: finish, release_token: the token was retired.
TOKEN_RETIRED = 0
#: finish: no token was given.
TOKEN_NONE = -1
#: finish: nothing is runnable but a key parked by its rate; the token is
#: deferred to the time its bucket refills (the reply's third element).
TOKEN_DEFERRED = 3

#: ack, release, extend, remove, revoke: done.
DONE = 1
#: ack, release, extend: the task holds no lease. remove, revoke: not waiting (there).
NOT_FOUND = 0
#: release: the task's record was unreadable; it was dropped.
RELEASE_CORRUPT = -1

#: requeue: the lease was finished and the task appended.
REQUEUE_DONE = 1
#: requeue (a retry only): no lease, the task waits already: requeued before.
REQUEUE_ALREADY = 2
#: requeue: the task holds no lease; nothing written.
REQUEUE_NOT_LEASED = 0

#: wait: a call may be runnable now; pop.
WAIT_READY = 1
#: wait: nothing is runnable; block on the notification list.
WAIT_BLOCK = 0

#: At most this many notification marks are kept (more waiters than this
#: are woken by the pops that follow: a pop that leaves calls waiting
#: pushes a mark).
NOTIFY_BOUND = 64

#: Every reply code, as the scripts see it (``__PUSH_STORED__`` ...).
REPLIES: Dict[str, int] = {
    name: value
    for name, value in dict(globals()).items()
    if name.isupper() and isinstance(value, int) and name not in ("PREFIX", "NOTIFY_BOUND")
}

# -- key names -------------------------------------------------------------


def check_namespace(namespace: object) -> str:
    """A namespace is a non-empty UTF-8 string without ``{`` or ``}`` (it is the hash tag)."""
    checked = validation.check_key(namespace, "namespace")
    if "{" in checked or "}" in checked:
        raise ValueError(f"namespace must not contain '{{' or '}}' (it is the hash tag): {checked!r}")
    return checked


def base(namespace: str) -> str:
    """The prefix of every Redis key of ``namespace``: ``ranch:{<namespace>}:``."""
    return f"{PREFIX}:{{{namespace}}}:"


def hex_key(key: Key) -> str:
    """The encoding of a user key inside Redis key names (order-preserving):
    the hex of its UTF-8 bytes; a pair ``(group, member)`` is ``<hex
    group>:<hex member>`` (hex has no ``:``, so a pair never shares a name
    with a string key)."""
    if isinstance(key, str):
        return key.encode("utf-8").hex()
    return f"{key[0].encode('utf-8').hex()}:{key[1].encode('utf-8').hex()}"


def key_of_hex(key_hex: Union[str, bytes]) -> Key:
    """The user key behind :func:`hex_key`'s encoding; ``ValueError`` if it is none."""
    text = key_hex.decode("ascii") if isinstance(key_hex, bytes) else key_hex
    group, colon, member = text.partition(":")
    if not colon:
        return bytes.fromhex(text).decode("utf-8")
    if not group or not member:
        raise ValueError(f"not a hex key: {text!r}")
    return (bytes.fromhex(group).decode("utf-8"), bytes.fromhex(member).decode("utf-8"))


#: A pair's field in a tag index starts with this byte (never in UTF-8 text,
#: so never a string key's field), then its hex key.
PAIR_TAG = b"\xff"


def tag_field(key: Key) -> Union[str, bytes]:
    """A key's field in a tag index: a string key itself, a pair ``PAIR_TAG`` + hex key."""
    return key if isinstance(key, str) else PAIR_TAG + hex_key(key).encode("ascii")


def key_of_tag_field(field: bytes) -> Key:
    """The key behind :func:`tag_field`."""
    if field.startswith(PAIR_TAG):
        return key_of_hex(field[len(PAIR_TAG) :])
    return field.decode("utf-8")


def stats_key(namespace: str) -> str:
    """The namespace's stats hash: ``KEYS[1]`` of every script."""
    return base(namespace) + "stats"


def tasks_key(namespace: str) -> str:
    """Hash of task id -> body."""
    return base(namespace) + "tasks"


def started_key(namespace: str) -> str:
    """Hash of leased task ids -> the time their run started (the run-time metric)."""
    return base(namespace) + "st"


def runtime_charges_key(namespace: str) -> str:
    """Hash of leased task ids charged by run time -> ``started estimate
    weight`` (ranch-core README, "Fair by time")."""
    return base(namespace) + "rt"


def delayed_key(namespace: str) -> str:
    """Zset of the delayed calls not yet due, by due time."""
    return base(namespace) + "delayed"


def key_delayed_key(namespace: str, key: Key) -> str:
    """Zset of one key's delayed calls not yet due, by due time."""
    return base(namespace) + "d:" + hex_key(key)


def leases_key(namespace: str) -> str:
    """Zset of leased task ids by deadline."""
    return base(namespace) + "leases"


def active_key(namespace: str) -> str:
    """Zset of the keys that have waiting tasks, in selection order."""
    return base(namespace) + "active"


def keys_key(namespace: str) -> str:
    """Set of hex keys whose list holds task ids."""
    return base(namespace) + "keys"


def expiry_key(namespace: str) -> str:
    """Zset of waiting tasks that expire, by ``expires_at``."""
    return base(namespace) + "expiry"


def queue_key(namespace: str, key: Key) -> str:
    """List of ``key``'s waiting task ids, head first."""
    return f"{base(namespace)}q:{hex_key(key)}"


def key_expiry_key(namespace: str, key: Key) -> str:
    """Zset of ``key``'s waiting tasks that expire."""
    return f"{base(namespace)}x:{hex_key(key)}"


def key_state_key(namespace: str, key: Key) -> str:
    """Hash of ``key``'s pass, serve sequence, weight, counters, tags and
    custom data (a string key's: also its group's state, controls and sums)."""
    return f"{base(namespace)}k:{hex_key(key)}"


def members_key(namespace: str, group: str) -> str:
    """Zset of the group's ready members (``(group, member)`` pairs and its own string key)."""
    return f"{base(namespace)}m:{hex_key(group)}"


def group_members_key(namespace: str, group: str) -> str:
    """Set of the hex members of the group's pairs that stored a call (``purge_key`` of the
    string key walks them)."""
    return f"{base(namespace)}g:{hex_key(group)}"


def group_expiry_key(namespace: str, group: str) -> str:
    """Zset of the group's pairs' waiting calls that expire, score = ``expires_at`` (the
    string key's pending count in O(log N))."""
    return f"{base(namespace)}y:{hex_key(group)}"


def parked_key(namespace: str) -> str:
    """Zset of keys parked by their rate, by the time their bucket refills (member: a pair's hex
    key, parked by its own rate, or a group's hex, parked by its string key's rate)."""
    return base(namespace) + "parked"


def deferred_key(namespace: str) -> str:
    """Zset of the deferred wake-up token, by the time it is due."""
    return base(namespace) + "wd"


def flight_key(namespace: str) -> str:
    """Zset of wake-up tokens in flight, by deadline."""
    return base(namespace) + "wf"


def held_key(namespace: str) -> str:
    """Zset of wake-up tokens held by workers, by deadline."""
    return base(namespace) + "wh"


def bound_key(namespace: str) -> str:
    """Hash of held token -> the task id it runs (``''`` when kept)."""
    return base(namespace) + "wb"


def holder_key(namespace: str) -> str:
    """Hash of task id -> the token held for it."""
    return base(namespace) + "wt"


def workers_key(namespace: str) -> str:
    """Zset of workers that registered their slots, by registration deadline."""
    return base(namespace) + "ww"


def slots_key(namespace: str) -> str:
    """Hash of registered worker -> its slots."""
    return base(namespace) + "wn"


def motion_key(namespace: str) -> str:
    """Hash of when a wake-up was last taken and the lost-token retirements since."""
    return base(namespace) + "wq"


def wake_key(namespace: str) -> str:
    """List of notification marks that blocked pops wait on (``BLPOP``)."""
    return base(namespace) + "wake"


def waiting_index_key(namespace: str) -> str:
    """Zset of hex keys by their waiting calls (keys with none left out)."""
    return base(namespace) + "kw"


def served_index_key(namespace: str) -> str:
    """Zset of hex keys by calls served."""
    return base(namespace) + "kn"


def registry_key() -> str:
    """Set of every namespace that stored a call (``ranch backlogs``); outside every namespace."""
    return f"{PREFIX}:backlogs"


def tag_index_key(namespace: str, name: str) -> str:
    """Hash of key -> value for tag ``name``."""
    return f"{base(namespace)}tag:{hex_key(name)}"


#: Upper bounds (seconds) of the wait and run-time histograms' buckets: a key's
#: state hash and the stats hash count the waits (stored -> started) up to each
#: bound in ``h0`` ... (``h<len>``: longer) and their sum in ``hs``, the run
#: times (started -> finished, counted by ``finish``) in ``u0`` ... and ``us``,
#: and failed calls in ``mf``; a key's ``me`` counts its expired calls and
#: ``mt`` its retries (``scripts/common.lua``, "Metrics", holds the same bounds).
WAIT_BOUNDS = (0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0)

#: Fields of a key's state hash.
CUSTOM_PREFIX = "d:"
TAG_PREFIX = "t:"
WEIGHT_FIELD = "w"
RUNNING_FIELD = "r"
LIMIT_FIELD = "cl"
RATE_FIELD = "rr"
RATE_TEXT_FIELD = "rt"
PAUSED_FIELD = "ps"
MAX_BACKLOG_FIELD = "mb"
#: The key's moving average of run times (``cost="runtime"``).
RUN_ESTIMATE_FIELD = "re"

# -- bodies ----------------------------------------------------------------


def float_arg(value: float) -> str:
    """A float as a script argument that parses back to the same double."""
    return repr(float(value))


def now_arg(now: Optional[float]) -> str:
    """``now`` as a script argument; ``''`` for "count expired tasks too"."""
    return "" if now is None else float_arg(now)


def encode_body(key_hex: str, enqueued_at: float, expires_at: Optional[float], data: bytes) -> bytes:
    """``<enqueued_at>,<expires_at or empty>,<hex key>,<payload bytes>``."""
    expires = b"" if expires_at is None else float_arg(expires_at).encode()
    return b"%s,%s,%s,%s" % (float_arg(enqueued_at).encode(), expires, key_hex.encode(), data)


def decode_body(body: bytes) -> Tuple[Key, float, Optional[float], bytes]:
    """``(key, enqueued_at, expires_at, payload bytes)``; ``ValueError`` if corrupt."""
    try:
        enqueued, expires, key_hex, data = body.split(b",", 3)
        key = key_of_hex(key_hex)
        return key, float(enqueued), (float(expires) if expires else None), data
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"corrupt task body: {exc}") from None

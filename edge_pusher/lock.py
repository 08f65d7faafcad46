"""The publish lock: one publisher at a time per bucket, with a lease so a crash cannot wedge it.

The lock is an object created with a conditional write (create-if-absent), so exactly one of two
racing publishers gets it. It carries an expiry; a publisher that finds an expired lock takes it
over with a compare-and-swap on the lock's ETag, so two rescuers cannot both win. The lease is a
liveness tool, not the safety net: the final ``timestamp.json`` write is itself conditional on
the ETag read at the start (see :mod:`edgeship.edge_pusher.repository`), so even a publisher
whose lease ran out cannot overwrite a newer publication.
"""

from __future__ import annotations

import json
import logging
import os
import random
import socket
import time
import uuid
from collections.abc import Callable

from edgeship.contract import is_object
from edgeship.edge_pusher.buckets import Bucket
from edgeship.errors import NotFound, OtaError, PreconditionFailed

log = logging.getLogger(__name__)

LOCK_KEY = "locks/publish.json"
#: How long a publisher waits for another one's lock before giving up (seconds).
DEFAULT_LOCK_WAIT = 60.0


def _holder(data: bytes) -> tuple[object, float]:
    """The owner and expiry a lock object names; an unreadable lock has long expired (its
    writer crashed mid-write, or it is not ours), so it is taken over."""
    unreadable = ("unreadable lock", 0.0)
    try:
        holder: object = json.loads(data)
    except ValueError:
        return unreadable
    expires = holder.get("expires", 0) if is_object(holder) else None
    if not is_object(holder) or not isinstance(expires, int | float | str):
        return unreadable
    try:
        return holder.get("owner"), float(expires)
    except ValueError:
        return unreadable


class PublishLock:
    def __init__(self, bucket: Bucket, lease_seconds: float = 300.0,
                 wait_seconds: float = DEFAULT_LOCK_WAIT,
                 clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], None] = time.sleep):
        self.bucket = bucket
        self.lease = lease_seconds
        self.wait = wait_seconds
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"
        self._clock = clock
        self._sleep = sleep
        self._etag: str | None = None

    def _body(self) -> bytes:
        return json.dumps({"owner": self.owner, "expires": self._clock() + self.lease},
                          sort_keys=True).encode()

    def acquire(self) -> None:
        deadline = self._clock() + self.wait
        delay = 0.05
        while True:
            try:
                self._etag = self.bucket.put_if_absent(LOCK_KEY, self._body())
                return
            except PreconditionFailed:
                pass
            try:
                data, etag = self.bucket.get_with_etag(LOCK_KEY)
            except NotFound:
                continue  # released between our two calls: try again at once
            owner, expires = _holder(data)
            if expires < self._clock():
                log.warning("taking over expired publish lock held by %s", owner)
                try:
                    self._etag = self.bucket.put_if_match(LOCK_KEY, self._body(), etag)
                    return
                except (PreconditionFailed, NotFound):
                    continue  # someone else rescued it first
            if self._clock() >= deadline:
                raise OtaError(
                    f"another publisher ({owner}) holds the publish lock on "
                    f"{self.bucket.url} for {max(0, expires - self._clock()):.0f}s more; "
                    "nothing was published, try again"
                )
            self._sleep(delay * (1 + random.random()))
            delay = min(delay * 2, 1.0)

    def release(self) -> None:
        if self._etag is None:
            return
        try:
            self.bucket.delete(LOCK_KEY, if_match=self._etag)
        except PreconditionFailed:
            log.warning("publish lock was taken over before release (lease too short?)")
        self._etag = None

    def __enter__(self) -> PublishLock:
        self.acquire()
        return self

    def __exit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        """Release on every way out. When the transaction failed and the release fails too
        (the bucket broke under it), the transaction's error is the one the user sees, and
        the lease frees the lock when it runs out."""
        try:
            self.release()
        except Exception as e:
            if exc is None:
                raise
            log.error("publish lock on %s not released (%s); it is free once its lease of "
                      "%g s runs out", self.bucket.url, e, self.lease)

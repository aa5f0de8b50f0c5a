"""Duplicate detection across batches, in bounded memory and without per-row Python.

Records get resent (a file ingested twice, a replayed batch), so the validator has to
recognise a key it has already accepted; but remembering every key forever grows without
bound, and a false positive would throw away a genuine record. Hence the design:

* per stream, a high-water mark (the largest key accepted so far) settles most rows with no
  lookup at all, because a key above it is new by construction and in-order data is the
  common case;
* only *late* rows (at or below the mark) are looked up, in a window of the most recently
  accepted exact keys, so memory is bounded by the window, not by history;
* hashes only locate candidates and the exact key always decides, so a hash collision can
  cost time but never a record.

The guarantee this gives is stated on ``ingestion.validation.Validator``.
"""

from __future__ import annotations

from collections import deque

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ingestion._common import INT64_MIN

_M1 = np.uint64(0x9E3779B97F4A7C15)
_M2 = np.uint64(0xC2B2AE3D27D4EB4F)
_M3 = np.uint64(0x165667B19E3779F9)
_M4 = np.uint64(0xBF58476D1CE4E5B9)
_M5 = np.uint64(0x94D049BB133111EB)


def _key_hash(stream: np.ndarray, ts: np.ndarray, seq: np.ndarray) -> np.ndarray:
    """64-bit mix of (stream, ts, seq) (splitmix64 finaliser); only used to *find* candidates,
    membership is always confirmed on the exact key."""
    h = ts.astype(np.uint64) * _M1
    h ^= seq.astype(np.uint64) * _M2
    h ^= stream.astype(np.uint64) * _M3
    h ^= h >> np.uint64(30)
    h *= _M4
    h ^= h >> np.uint64(27)
    h *= _M5
    h ^= h >> np.uint64(31)
    return h


class _KeyChunk:
    """Exact keys of accepted rows; sorted by hash lazily, on the first lookup that needs it."""

    __slots__ = ("stream", "ts", "seq", "_hash")

    def __init__(self, stream: np.ndarray, ts: np.ndarray, seq: np.ndarray) -> None:
        self.stream, self.ts, self.seq = stream, ts, seq
        self._hash: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.ts)

    @staticmethod
    def merge(chunks: list[_KeyChunk]) -> _KeyChunk:
        if len(chunks) == 1:
            return chunks[0]
        return _KeyChunk(*(np.concatenate([getattr(c, a) for c in chunks])
                           for a in ("stream", "ts", "seq")))

    def contains(self, stream: np.ndarray, ts: np.ndarray, seq: np.ndarray) -> np.ndarray:
        """Exact membership of each query key."""
        if self._hash is None:
            h = _key_hash(self.stream, self.ts, self.seq)
            order = np.argsort(h)
            self._hash = h[order]
            self.stream, self.ts, self.seq = self.stream[order], self.ts[order], self.seq[order]
        q = _key_hash(stream, ts, seq)
        pos = np.searchsorted(self._hash, q)
        found = np.zeros(len(q), bool)
        active = np.arange(len(q))
        while active.size:  # walks runs of equal hashes; one pass unless hashes collide
            p = pos[active]
            live = p < len(self._hash)
            active, p = active[live], p[live]
            live = self._hash[p] == q[active]
            active, p = active[live], p[live]
            exact = ((self.ts[p] == ts[active]) & (self.seq[p] == seq[active])
                     & (self.stream[p] == stream[active]))
            found[active[exact]] = True
            active = active[~exact]
            pos[active] += 1
        return found


class _KeyWindow:
    """The most recently accepted keys: always at least the last ``capacity`` of them.

    New keys go to an open list of chunks, sealed into one chunk per ``capacity // 16`` keys;
    whole sealed chunks are evicted oldest first while the rest still hold ``capacity`` keys.
    Memory is about 24 bytes x (capacity + one chunk + the largest batch).
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._chunk_size = max(1, capacity // 16)
        self._sealed: deque[_KeyChunk] = deque()
        self._open: list[_KeyChunk] = []
        self._open_size = 0
        self.size = 0

    def add(self, stream: np.ndarray, ts: np.ndarray, seq: np.ndarray) -> None:
        if not len(ts):
            return
        self._open.append(_KeyChunk(stream, ts, seq))
        self._open_size += len(ts)
        self.size += len(ts)
        if self._open_size >= self._chunk_size:
            self._sealed.append(_KeyChunk.merge(self._open))
            self._open, self._open_size = [], 0
        while self._sealed and self.size - len(self._sealed[0]) >= self.capacity:
            self.size -= len(self._sealed.popleft())

    def contains(self, stream: np.ndarray, ts: np.ndarray, seq: np.ndarray) -> np.ndarray:
        if len(self._open) > 1:
            self._open = [_KeyChunk.merge(self._open)]
        found = np.zeros(len(ts), bool)
        for chunk in (*self._sealed, *self._open):
            todo = np.flatnonzero(~found)
            if not todo.size:
                break
            found[todo] = chunk.contains(stream[todo], ts[todo], seq[todo])
        return found


class _Deduplicator:
    """Duplicate detection for one kind; a *stream* is a symbol (trades, quotes) or a
    (symbol, interval) pair (bars, keyed as symbol + U+001F + interval), and a key is
    (stream, ts, seq) (seq = 0 for bars). Streams get dense int ids via ``pc.index_in``
    against the streams seen so far, so no per-row or per-symbol Python runs per batch.

    Per stream it keeps a high-water mark, the largest (ts, seq) accepted so far. A key above
    its stream's mark is new (no lookup). A key at or below the mark is *late*: it is a
    duplicate if the exact key is in the window of recently accepted keys, and otherwise it is
    accepted as a genuine late record. Within a batch, exact equal keys are duplicates of the
    first occurrence. See ``Validator`` for the guarantee this gives.
    """

    def __init__(self, window: int) -> None:
        self._known = pa.array([], pa.string())  # stream keys; position = stream id
        self._hwm_ts = np.full(1024, INT64_MIN, np.int64)
        self._hwm_seq = np.full(1024, INT64_MIN, np.int64)
        self._window = _KeyWindow(window)

    def _stream_ids(self, keys: pa.Array) -> np.ndarray:
        """Persistent id per (distinct) stream key; unseen keys get the next ids."""
        found = pc.index_in(keys, value_set=self._known)
        lut = found.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
        new = lut < 0
        if new.any():
            lut[new] = np.arange(len(self._known), len(self._known) + int(new.sum()))
            self._known = pa.concat_arrays([self._known, keys.filter(pa.array(new))])
        if len(self._known) > len(self._hwm_ts):
            grow = max(len(self._known), 2 * len(self._hwm_ts)) - len(self._hwm_ts)
            self._hwm_ts = np.concatenate([self._hwm_ts, np.full(grow, INT64_MIN, np.int64)])
            self._hwm_seq = np.concatenate([self._hwm_seq, np.full(grow, INT64_MIN, np.int64)])
        return lut

    def check(self, local: np.ndarray, keys: pa.Array, ts: np.ndarray,
              seq: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Classify rows (``local`` indexes ``keys``, the batch's distinct stream keys) and
        remember the accepted ones. Returns (duplicate within the batch, duplicate of an
        earlier batch)."""
        m = len(ts)
        dup_batch, dup_earlier = np.zeros(m, bool), np.zeros(m, bool)
        if not m:
            return dup_batch, dup_earlier
        # Common case first: group rows by stream with an O(n) radix sort (stable keeps row
        # order); if every stream's keys strictly increase in row order there are no repeats.
        small = local.astype(np.uint16) if len(keys) <= 65_535 else local
        order = np.argsort(small, kind="stable")
        ls, t, s = local[order], ts[order], seq[order]
        same = ls[1:] == ls[:-1]
        later = (t[1:] > t[:-1]) | ((t[1:] == t[:-1]) & (s[1:] > s[:-1]))
        if not np.all(later | ~same):
            order = np.lexsort((seq, ts, local))  # stable: first occurrence stays first
            ls, t, s = local[order], ts[order], seq[order]
            same = ls[1:] == ls[:-1]
            repeat = same & (t[1:] == t[:-1]) & (s[1:] == s[:-1])
            dup_batch[order[1:][repeat]] = True
        lut = self._stream_ids(keys)
        stream = lut[local]
        hwm_t, hwm_s = self._hwm_ts[stream], self._hwm_seq[stream]
        late = ~((ts > hwm_t) | ((ts == hwm_t) & (seq > hwm_s))) & ~dup_batch
        if late.any():
            rows = np.flatnonzero(late)
            dup_earlier[rows] = self._window.contains(stream[rows], ts[rows], seq[rows])
        keep = ~(dup_batch | dup_earlier)
        self._window.add(stream[keep], ts[keep], seq[keep])
        # last row of each stream group in sort order = that stream's largest key in the batch
        ends = np.flatnonzero(np.append(ls[1:] != ls[:-1], True))
        g, gt, gs = lut[ls[ends]], t[ends], s[ends]
        old_t, old_s = self._hwm_ts[g], self._hwm_seq[g]
        newer = (gt > old_t) | ((gt == old_t) & (gs > old_s))
        self._hwm_ts[g[newer]] = gt[newer]
        self._hwm_seq[g[newer]] = gs[newer]
        return dup_batch, dup_earlier

"""Walk-forward validation folds with a purge gap, on the window's bar times (pure Python).

The window's distinct bar times (``ts`` of the bars of one interval, all symbols together) are
cut into ``folds + 1`` contiguous blocks of (nearly) equal count. Fold i (1..folds):

    train: the bar times of blocks [0, i)   (expanding)  or  [i - train_blocks, i)   (rolling)
    purge: the first ``purge`` bar times of block i, used by neither side
    test:  the rest of block i

so a fold trains on ``[t0, t1)``, skips ``g`` bar times and tests on ``[t1 + g, t2)``, and the next
fold rolls forward by one block. Everything is half-open ``[from, to)`` in UTC ns. The purge
keeps the labels of the last training rows (each looks one bar ahead, to ``label_ts``) out of
the test block; ``train.py`` also drops training rows whose ``label_ts`` reaches ``test_from``,
which covers a symbol that skipped bar times.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Fold:
    index: int  # 1-based
    train_from: int  # UTC ns, inclusive
    train_to: int  # exclusive: the first bar time of the purge
    test_from: int  # inclusive: the first bar time after the purge
    test_to: int  # exclusive

    def to_json(self) -> dict:
        return asdict(self)


def folds(times: Sequence[int], n_folds: int, purge: int, train_blocks: int = 0) -> list[Fold]:
    """The walk-forward folds over the sorted distinct bar ``times`` (see the module doc).

    Raises ValueError when a test block would be empty after the purge (too few bar times for
    ``n_folds`` folds with a purge of ``purge``).
    """
    if n_folds < 1 or purge < 0 or train_blocks < 0:
        raise ValueError("need n_folds >= 1, purge >= 0, train_blocks >= 0")
    times = list(times)
    if any(b <= a for a, b in zip(times, times[1:], strict=False)):
        raise ValueError("times must be sorted and distinct")
    n, blocks = len(times), n_folds + 1
    start = [b * n // blocks for b in range(blocks + 1)]  # block b is times[start[b]:start[b + 1]]
    smallest = min(start[b + 1] - start[b] for b in range(1, blocks))
    if smallest <= purge:
        raise ValueError(f"{n} bar times are too few for {n_folds} folds with a purge of {purge} "
                         f"bar times: a test block would hold {max(smallest - purge, 0)}")
    end = times[-1] + 1
    out = []
    for i in range(1, blocks):
        first = start[max(0, i - train_blocks)] if train_blocks else 0
        test_end = start[i + 1]
        out.append(Fold(i, times[first], times[start[i]], times[start[i] + purge],
                        times[test_end] if test_end < n else end))
    return out

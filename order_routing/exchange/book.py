"""A limit order book per symbol with price-time priority, and the exchange's market maker.

Prices inside the book are integer ticks (``round(price / tick)``), so level keys compare exactly
and a price that is not a tick multiple is refused at the door. Each side is a dict
``ticks -> deque[Order]`` (time priority within a level) plus a heap of level prices (price
priority); a heap entry whose level is gone is skipped lazily. No logging here: the acceptor
turns what a call returns (``Trade`` values and the orders' own state) into reports.

FIX semantics kept by ``replace``: a larger quantity or a new price loses time priority (the order
goes to the back of its new level); a smaller quantity keeps it; a quantity below what is already
filled is refused. Market orders, IOC and FOK never rest: what does not fill at once is canceled.

The market maker: with a mark (the last trade price, from the market-data feed or the exchange's
own trades) the book shows ``mm_qty`` at ``mark -/+ half_spread_bps`` each side, re-posted whenever
``set_mark`` is called with a new price or the quote has been (partly) hit, so a market order fills
even when no other client is in the book. Without a mark and with no contra order resting, a market
order is refused with "no liquidity".
"""

from __future__ import annotations

import heapq
import math
from collections import deque

BUY, SELL = "B", "S"  # as intelligence.domain / order_routing.events
EPS = 1e-9  # quantities closer than this are equal (float fills of fractional sizes)
RESTING_TIFS = ("DAY", "GTC")
TIFS = ("DAY", "GTC", "IOC", "FOK")
MARKET_MAKER = None  # the owner of the book's own quotes: nobody to report to


class BookError(ValueError):
    """A request the book refuses; the message is the reject text sent to the client."""


class Order:
    """One order in (or through) a book. ``price`` is in ticks, None for a market order.
    ``status`` is the FIX OrdStatus name; ``owner`` and ``cl_ord_id`` are the caller's."""

    __slots__ = ("order_id", "side", "qty", "price", "tif", "owner", "cl_ord_id", "cum_qty",
                 "notional", "status", "seq")

    def __init__(self, order_id: str, side: str, qty: float, price: int | None, tif: str = "GTC",
                 owner: object = MARKET_MAKER, cl_ord_id: str = "") -> None:
        self.order_id, self.side, self.qty, self.price, self.tif = order_id, side, qty, price, tif
        self.owner, self.cl_ord_id = owner, cl_ord_id
        self.cum_qty = 0.0
        self.notional = 0.0  # sum of fill qty * price: avg price = notional / cum_qty
        self.status = "NEW"
        self.seq = 0  # time priority: lower is earlier

    @property
    def leaves_qty(self) -> float:
        return 0.0 if self.status in ("CANCELED", "FILLED", "REJECTED") else max(self.qty - self.cum_qty, 0.0)

    @property
    def avg_price(self) -> float:
        return self.notional / self.cum_qty if self.cum_qty > 0 else 0.0

    def __repr__(self) -> str:
        return (f"Order({self.order_id} {self.side} {self.cum_qty:g}/{self.qty:g} @ {self.price} "
                f"{self.tif} {self.status})")


class Trade:
    """One match: ``qty`` at ``price`` between a resting ``maker`` and the incoming ``taker``, with
    each side's cumulative quantity and average price right after it (what its report says)."""

    __slots__ = ("price", "qty", "maker", "taker", "maker_cum", "maker_avg", "taker_cum", "taker_avg")

    def __init__(self, price: float, qty: float, maker: Order, taker: Order) -> None:
        self.price, self.qty, self.maker, self.taker = price, qty, maker, taker
        self.maker_cum, self.maker_avg = maker.cum_qty, maker.avg_price
        self.taker_cum, self.taker_avg = taker.cum_qty, taker.avg_price

    def __repr__(self) -> str:
        return f"Trade({self.qty:g} @ {self.price} maker={self.maker.order_id} taker={self.taker.order_id})"


class OrderBook:
    """The book of one symbol. Not thread-safe: the acceptor serialises calls."""

    def __init__(self, symbol: str, tick: float = 0.01, *, mm_qty: float = 0.0,
                 half_spread_bps: float = 2.0, price_band_pct: float = 0.0) -> None:
        if not tick > 0:
            raise ValueError(f"tick must be > 0, got {tick!r}")
        self.symbol, self.tick = symbol, tick
        self.mm_qty, self.half_spread_bps, self.price_band_pct = mm_qty, half_spread_bps, price_band_pct
        self._decimals = max(0, -math.floor(math.log10(tick)) + 2)
        self._levels: dict[str, dict[int, deque[Order]]] = {BUY: {}, SELL: {}}
        self._heaps: dict[str, list[int]] = {BUY: [], SELL: []}  # bids negated: heap[0] is best
        self._seq = 0
        self.mark: float | None = None
        self._mm: dict[str, Order | None] = {BUY: None, SELL: None}
        self._mm_ids = 0

    # ----- prices
    def ticks(self, price: float) -> int:
        """``price`` as ticks; refuses a non-positive price, one off the tick grid, or one further
        than ``price_band_pct`` from the mark (when there is a mark and a band)."""
        if not (isinstance(price, int | float) and math.isfinite(price) and price > 0):
            raise BookError(f"price {price!r} must be a positive number")
        ticks = round(price / self.tick)
        if abs(ticks * self.tick - price) > 1e-6 * self.tick + 1e-12 * price or ticks <= 0:
            raise BookError(f"price {price!r} is not a multiple of the tick {self.tick:g}")
        band = self.price_band_pct
        if self.mark and band > 0 and abs(price / self.mark - 1) * 100 > band + 1e-9:
            raise BookError(f"price {price!r} is more than {self.price_band_pct:g}% from the mark "
                            f"{self.mark:g}")
        return ticks

    def price(self, ticks: int) -> float:
        return round(ticks * self.tick, self._decimals)

    # ----- queries
    def best(self, side: str) -> int | None:
        """Best resting price (ticks) on ``side``, None when that side is empty."""
        heap, levels = self._heaps[side], self._levels[side]
        while heap:
            key = -heap[0] if side == BUY else heap[0]
            if key in levels:
                return key
            heapq.heappop(heap)  # a level emptied earlier
        return None

    def depth(self, side: str) -> list[tuple[float, float]]:
        """(price, total leaves) per level on ``side``, best first (tests, status)."""
        levels = self._levels[side]
        keys = sorted(levels, reverse=side == BUY)
        return [(self.price(k), sum(o.leaves_qty for o in levels[k])) for k in keys]

    def resting(self, side: str) -> list[Order]:
        """Resting orders on ``side`` in matching order."""
        levels = self._levels[side]
        return [o for k in sorted(levels, reverse=side == BUY) for o in levels[k]]

    # ----- order entry
    def submit(self, order: Order) -> list[Trade]:
        """Match ``order`` and rest what is left (DAY/GTC limit) or cancel it (market, IOC, FOK).
        Raises BookError, changing nothing, for a market order with nothing to trade against."""
        if not order.qty > EPS:
            raise BookError(f"quantity {order.qty!r} must be > 0")
        if order.tif not in TIFS:
            raise BookError(f"time in force {order.tif!r} is not supported")
        contra = SELL if order.side == BUY else BUY
        if order.price is None and self.best(contra) is None:
            raise BookError("no liquidity")
        self._seq += 1
        order.seq = self._seq
        if order.tif == "FOK" and self._available(order) < order.qty - EPS:
            order.status = "CANCELED"
            return []
        trades = self._match(order)
        if order.qty - order.cum_qty > EPS and order.status != "FILLED":
            if order.price is None or order.tif not in RESTING_TIFS:
                order.status = "CANCELED"
            else:
                self._rest(order)
        return trades

    def cancel(self, order: Order) -> None:
        """Take a resting order out; it is CANCELED."""
        if not self._unrest(order):
            raise BookError(f"order {order.order_id} is not open ({order.status})")
        order.status = "CANCELED"

    def replace(self, order: Order, qty: float, price: int | None) -> list[Trade]:
        """Change a resting order's total quantity and/or price (None: it becomes a market order)."""
        if not self.is_resting(order):
            raise BookError(f"order {order.order_id} is not open ({order.status})")
        if not qty > EPS:
            raise BookError(f"quantity {qty!r} must be > 0")
        if qty < order.cum_qty - EPS:
            raise BookError(f"quantity {qty:g} is below the filled quantity {order.cum_qty:g}")
        if qty <= order.cum_qty + EPS:  # nothing left to work: done
            self._unrest(order)
            order.qty, order.status = qty, "FILLED"
            return []
        if price == order.price and qty <= order.qty:  # smaller or same: keeps its place
            order.qty = qty
            return []
        self._unrest(order)
        order.qty, order.price = qty, price
        self._seq += 1
        order.seq = self._seq
        trades = self._match(order)
        if order.status != "FILLED":
            if price is None:
                order.status = "CANCELED"
            else:
                self._rest(order)
        return trades

    def is_resting(self, order: Order) -> bool:
        level = self._levels[order.side].get(order.price) if order.price is not None else None
        return level is not None and order.status in ("NEW", "PARTIALLY_FILLED") and order in level

    # ----- market maker
    def set_mark(self, price: float) -> list[Trade]:
        """New mark: re-post the market maker's quotes around it. Returns trades of resting client
        orders the new quotes crossed (the market moved through their limits)."""
        if not (math.isfinite(price) and price > 0):
            return []
        self.mark = price
        if self.mm_qty <= 0:
            return []
        spread = self.half_spread_bps / 10_000
        bid = max(1, math.floor(price * (1 - spread) / self.tick + 1e-9))
        ask = max(bid + 1, math.ceil(price * (1 + spread) / self.tick - 1e-9))
        trades: list[Trade] = []
        wanted = {BUY: bid, SELL: ask}
        keep = set()
        for side, ticks in wanted.items():  # pull both stale quotes first: a new bid must never
            old = self._mm[side]              # trade against the maker's own old ask (self-trade)
            if old is not None and old.price == ticks and self.is_resting(old) and old.cum_qty <= EPS:
                keep.add(side)  # the same full quote: keep its time priority
            elif old is not None and self.is_resting(old):
                self._unrest(old)
                old.status = "CANCELED"
        for side, ticks in wanted.items():
            if side in keep:
                continue
            self._mm_ids += 1
            quote = Order(f"MM-{self.symbol}-{self._mm_ids}", side, self.mm_qty, ticks, "GTC")
            self._mm[side] = quote
            trades += self.submit(quote)
        return trades

    # ----- internals
    def _match(self, order: Order) -> list[Trade]:
        trades: list[Trade] = []
        buy = order.side == BUY
        contra = SELL if buy else BUY
        levels, heap = self._levels[contra], self._heaps[contra]
        limit = order.price
        while order.qty - order.cum_qty > EPS and heap:
            key = -heap[0] if not buy else heap[0]
            level = levels.get(key)
            if level is None:
                heapq.heappop(heap)
                continue
            if limit is not None and (key > limit if buy else key < limit):
                break
            px = self.price(key)
            while level and order.qty - order.cum_qty > EPS:
                maker = level[0]
                qty = min(order.qty - order.cum_qty, maker.qty - maker.cum_qty)
                for o in (maker, order):
                    o.cum_qty += qty
                    o.notional += qty * px
                    o.status = "FILLED" if o.qty - o.cum_qty <= EPS else "PARTIALLY_FILLED"
                if maker.status == "FILLED":
                    level.popleft()
                trades.append(Trade(px, qty, maker, order))
            if not level:
                del levels[key]
                heapq.heappop(heap)
        return trades

    def _available(self, order: Order) -> float:
        """Contra quantity within the order's limit (FOK's all-or-nothing check)."""
        contra = SELL if order.side == BUY else BUY
        total = 0.0
        for key, level in self._levels[contra].items():
            if order.price is None or (key <= order.price if order.side == BUY else key >= order.price):
                total += sum(o.qty - o.cum_qty for o in level)
        return total

    def _rest(self, order: Order) -> None:
        levels = self._levels[order.side]
        level = levels.get(order.price)
        if level is None:
            level = levels[order.price] = deque()
            heap = self._heaps[order.side]
            heapq.heappush(heap, -order.price if order.side == BUY else order.price)
            if len(heap) > 2 * len(levels) + 32:  # stale entries of emptied levels: rebuild
                heap[:] = [-k for k in levels] if order.side == BUY else list(levels)
                heapq.heapify(heap)
        level.append(order)

    def _unrest(self, order: Order) -> bool:
        levels = self._levels[order.side]
        level = levels.get(order.price) if order.price is not None else None
        if level is None or order.status not in ("NEW", "PARTIALLY_FILLED"):
            return False
        try:
            level.remove(order)  # O(level length): cancels are rarer than adds, levels short
        except ValueError:
            return False
        if not level:
            del levels[order.price]  # its heap entry goes lazily
        return True

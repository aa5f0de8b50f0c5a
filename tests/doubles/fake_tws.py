"""FakeTws: a TEST DOUBLE of Trader Workstation's API socket, the project's only test double.

Why it exists: ``ingestion.ib_source`` must be tested against the real ``ib_async`` client over a
real TCP socket, but a real TWS needs an IB account, a GUI login and market-data permissions.
So this double speaks just enough of the TWS API wire protocol, on 127.0.0.1 and an ephemeral
port, for ``IB.connect()`` to complete and for tick-by-tick data to stream from a script.
Everything else in the tests is real code; nothing of ours is mocked.

Wire format (both directions): every message is a 4-byte big-endian length, then its fields,
each terminated by NUL; field 0 is the message id. The handshake is the exception: the client
sends ``b"API\\0"`` and then one length-prefixed text ``"v<min>..<max>[ options]"``; the server
answers with two fields, its version and its connection time. The version picked here is
``SERVER_VERSION`` (178, ``ib_async`` 2.1's ``MaxClientVersion``) capped by the client's maximum;
field layouts below are the ones ``ib_async``'s decoder reads at that version.

Client -> server requests answered (every request, answered or not, is kept in ``received``):

==== ======================== ==========================================================
 id  request                  reply (server message ids)
==== ======================== ==========================================================
 71  startApi                 15 managedAccounts, 9 nextValidId
 61  reqPositions             62 positionEnd
  5  reqOpenOrders            53 openOrderEnd
 99  reqCompletedOrders       102 completedOrdersEnd
  6  reqAccountUpdates        54 accountDownloadEnd (when subscribing)
 76  reqAccountUpdatesMulti   74 accountUpdateMultiEnd
  7  reqExecutions            11 execDetails (the request's reqId) + 59 commissionReport per
                              past execution (all sessions, as TWS re-sends them), 55 end
  9  reqContractDetails       10 contractDetails + 52 contractDetailsEnd; 4 error 200 if the
                              symbol is not scripted
 97  reqTickByTickData        99 tickByTick: type 2 (AllLast) per scripted trade for
                              "AllLast", type 3 (BidAsk) per scripted quote for "BidAsk";
                              4 error for a symbol listed in ``reject``
  3  placeOrder, new id       5 openOrder + 3 orderStatus Submitted, then the fills (below);
                              4 error 201 "Order rejected - reason:..." for a symbol in
                              ``order_reject`` (the order is not kept); nothing for a symbol
                              in ``hold`` until ``release_held()`` (below)
  3  placeOrder, known id     (IB's modify) 5 openOrder + 3 orderStatus with the new values,
                              then fills if it became marketable; 4 error 104 if it is done
  4  cancelOrder              4 error 202 "Order Canceled - reason:" + 3 orderStatus
                              Cancelled; 4 error 10147 (unknown id) / 10148 (done order)
  5  reqOpenOrders            5 openOrder + 3 orderStatus per working order of this client,
                              then 53 openOrderEnd
 99  reqCompletedOrders       101 completedOrder per done (filled/cancelled) order, 102 end
==== ======================== ==========================================================

Orders (kept across client connections, as TWS keeps them; ``orders`` by IB order id): an order
is marketable when its symbol has a ``marks`` price and it is a market order or a limit at or
through the mark. A marketable order fills at the mark, in executions of at most ``max_lot``
shares, while the symbol's ``liquidity`` (shares, consumed; unlimited if absent) lasts; the
rest keeps working (``Submitted``). Each execution sends, in ``fill_order``: ``"exec"`` 11
execDetails (reqId -1), ``"commission"`` 59 commissionReport (``commission_per_share``, at least
1.00 per execution, as IB's fixed pricing; ``None``: no report), ``"status"`` 3 orderStatus
(Submitted with the filled quantity, or Filled). ``drop_client()`` hangs up on the client.
Exec ids look like IB's (``0000e0d5.<permId hex>.01.01``). ``hold={"MSFT"}`` plays a TWS that
holds new orders for those symbols behind a confirmation dialog: it says nothing about them and
does not list them (openOrder, completedOrder) until ``release_held()``, someone pressing
Transmit, places them as if they had just arrived. ``hold_changes`` does the same to the
modifies and cancels of orders of those symbols (the order itself stays as it was meanwhile).

Field layouts (server version 178): openOrder has no version field, contract without
primaryExchange, no faProfile (>= 177), then duration, postToAts, autoCancelParent and the five
PEG fields (>= 170); completedOrder likewise without orderId/clientId; execDetails has no
version field and ends with pendingPriceRevision (>= 178); orderStatus has no version field and
ends with mktCapPrice; commissionReport is [59, 1, execId, commission, currency, realizedPNL,
yield, yieldRedemptionDate]; error is [4, 2, reqId (the order id), code, text, json].

Scripted data: ``ticks={"AAPL": [(time_s, price, size, exchange[, conditions]), ...]}`` and
``quotes={"AAPL": [(time_s, bid, bid_size, ask, ask_size), ...]}``, sent as they are (a price of
0 or a negative size goes out unchanged: validation is the client side's job). A subscription
sends its symbol's whole script at once. ``disconnect_after=n`` drops the client after the
n-th tick sent, to play a TWS that goes away mid-stream.
"""

from __future__ import annotations

import contextlib
import math
import socket
import struct
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

Trade = tuple[Any, ...]  # (time_s, price, size, exchange) or (..., exchange, conditions)
Quote = tuple[float, float, float, float, float]  # (time_s, bid, bid_size, ask, ask_size)

_LEN = struct.Struct(">I")
_MIN_VERSION = 166  # error messages carry advancedOrderRejectJson from here on; we always send it
_TICK_TYPES = {"AllLast": 2, "BidAsk": 3}  # tick-by-tick request name -> tickByTick type field
_DONE = ("Filled", "Cancelled", "ApiCancelled", "Inactive")  # IB order states that are final
_FILL_MESSAGES = ("exec", "commission", "status")


@dataclass
class FakeOrder:
    """An order as the fake TWS keeps it."""

    order_id: int
    client_id: int
    perm_id: int
    symbol: str
    action: str  # BUY | SELL
    quantity: float
    order_type: str  # MKT | LMT
    limit_price: float | None
    tif: str
    account: str
    order_ref: str
    status: str = "Submitted"
    filled: float = 0.0
    notional: float = 0.0
    last_price: float = 0.0

    @property
    def remaining(self) -> float:
        return self.quantity - self.filled

    @property
    def avg_price(self) -> float:
        return self.notional / self.filled if self.filled else 0.0


class FakeExecution(NamedTuple):
    """One execution, kept for reqExecutions."""

    exec_id: str
    order: FakeOrder
    shares: float
    price: float
    cum_qty: float
    avg_price: float
    time: str  # "YYYYmmdd HH:MM:SS UTC", as TWS writes it
    commission: float | None


class _Hangup(Exception):
    """The fake dropped the client on purpose (``disconnect_after`` or ``close``)."""


class FakeTws:
    """A scripted TWS on ``127.0.0.1:port``, serving one client connection at a time."""

    SERVER_VERSION = 178

    def __init__(self, ticks: Mapping[str, Iterable[Trade]] | None = None,
                 quotes: Mapping[str, Iterable[Quote]] | None = None, *,
                 account: str = "DU123456", reject: Mapping[str, tuple[int, str]] | None = None,
                 disconnect_after: int | None = None, marks: Mapping[str, float] | None = None,
                 liquidity: Mapping[str, float] | None = None, max_lot: float | None = None,
                 commission_per_share: float | None = 0.005,
                 order_reject: Mapping[str, str] | None = None,
                 fill_order: Sequence[str] = _FILL_MESSAGES, hold: Iterable[str] = (),
                 hold_changes: Iterable[str] = ()) -> None:
        self.ticks = {sym: [tuple(t) for t in rows] for sym, rows in (ticks or {}).items()}
        self.quotes = {sym: [tuple(q) for q in rows] for sym, rows in (quotes or {}).items()}
        self.account = account
        self.reject = dict(reject or {})
        self.disconnect_after = disconnect_after
        self.server_version: int | None = None  # negotiated with the last client
        self.received: list[tuple[str, ...]] = []  # every client message, fields as sent
        self.ticks_sent = 0
        self.conids = {sym: 265598 + i for i, sym in enumerate(sorted({*self.ticks, *self.quotes}))}
        self.marks = dict(marks or {})
        self.liquidity = dict(liquidity or {})
        self.max_lot = max_lot
        self.commission_per_share = commission_per_share
        self.order_reject = dict(order_reject or {})
        self.hold, self.hold_changes = set(hold), set(hold_changes)
        self.held: list[tuple[str, ...]] = []  # placeOrder / cancelOrder messages held, in order
        self._answering = threading.Lock()  # the server thread's answers vs release_held()
        if sorted(fill_order) != sorted(_FILL_MESSAGES):
            raise ValueError(f"fill_order must order {_FILL_MESSAGES}, got {fill_order!r}")
        self.fill_order = tuple(fill_order)
        self.orders: dict[int, FakeOrder] = {}
        self.executions: list[FakeExecution] = []
        self.client_id: int | None = None  # of the connected (or last) client
        self._closed = threading.Event()
        self._client_gone = threading.Event()
        self._conn: socket.socket | None = None
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.1)  # lets the accept loop notice close()
        self.port: int = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, name="fake-tws", daemon=True)
        self._thread.start()

    # -- test-facing helpers -------------------------------------------------------------------

    def __enter__(self) -> FakeTws:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop listening and drop any client (it sees the socket close, as when TWS exits)."""
        self._closed.set()
        self._drop_client()
        self._listener.close()
        self._thread.join(timeout=5)

    def requests(self, msg_id: int) -> list[tuple[str, ...]]:
        """The client messages with id ``msg_id``, in the order they arrived."""
        return [fields for fields in list(self.received) if fields[0] == str(msg_id)]

    def tick_by_tick_requests(self) -> list[tuple[str, str, int]]:
        """``(symbol, tick type, conId)`` of each reqTickByTickData (97) the client sent."""
        return [(f[3], f[14], int(f[2])) for f in self.requests(97)]

    def release_held(self) -> int:
        """Place the held orders now, on the connected client's socket; how many there were."""
        with self._answering:
            held, self.held = self.held, []
            conn = self._conn
            assert conn is not None, "no client connected"
            for fields in held:
                if fields[0] == "3":
                    self._place_order(conn, fields, may_hold=False)
                else:
                    self._cancel_order(conn, int(fields[2]), may_hold=False)
            return len(held)

    def drop_client(self) -> None:
        """Hang up on the connected client (TWS restarting, a network cut); keep listening."""
        self._drop_client()

    def wait_client_gone(self, timeout: float = 5.0) -> bool:
        """Block until a client connection has ended (so its last messages are recorded)."""
        return self._client_gone.wait(timeout)

    # -- server --------------------------------------------------------------------------------

    def _serve(self) -> None:
        while not self._closed.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:  # listener closed
                return
            conn.settimeout(None)
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # no Nagle stalls
            self._conn = conn
            self._client_gone.clear()
            try:
                self._session(conn)
            except (_Hangup, ConnectionError, OSError):
                pass
            finally:
                self._drop_client()
                self._client_gone.set()

    def _session(self, conn: socket.socket) -> None:
        if _recv_exact(conn, 4) != b"API\0":
            return
        low, high = _version_range(_recv_exact(conn, _LEN.unpack(_recv_exact(conn, 4))[0]))
        version = min(self.SERVER_VERSION, high)
        if version < max(low, _MIN_VERSION):
            return  # no version both sides speak: hang up, as TWS does
        self.server_version = version
        self._send(conn, version, time.strftime("%Y%m%d %H:%M:%S UTC", time.gmtime()))
        answering = True
        while (fields := _read_message(conn)) is not None:
            self.received.append(fields)
            if not answering:
                continue
            try:
                with self._answering:
                    self._answer(conn, fields)
            except (ConnectionError, OSError):
                # the client closed while we were answering (ticks it no longer reads): keep
                # reading what it sent before it went, e.g. its cancels, as TWS would have
                answering = False

    def _answer(self, conn: socket.socket, f: tuple[str, ...]) -> None:
        """Reply to one client message; ids and layouts as in the module docstring."""
        msg_id = int(f[0])
        if msg_id == 71:
            self.client_id = int(f[2])
            self._send(conn, 15, 1, self.account)
            self._send(conn, 9, 1, max(self.orders, default=0) + 1)  # nextValidId
        elif msg_id == 61:
            self._send(conn, 62, 1)
        elif msg_id == 3:
            self._place_order(conn, f)
        elif msg_id == 4:
            self._cancel_order(conn, int(f[2]), f)
        elif msg_id == 5:
            for order in self.orders.values():
                if order.status not in _DONE and order.client_id == self.client_id:
                    self._open_order(conn, order)
                    self._order_status(conn, order)
            self._send(conn, 53, 1)
        elif msg_id == 99:
            for order in self.orders.values():
                if order.status in ("Filled", "Cancelled"):
                    self._completed_order(conn, order)
            self._send(conn, 102)
        elif msg_id == 6 and f[2] == "1":
            self._send(conn, 54, 1, f[3])
        elif msg_id == 76:
            self._send(conn, 74, 1, f[2])
        elif msg_id == 7:  # [7, 3, reqId, clientId, acctCode, time, symbol, secType, exchange, side]
            for execution in self.executions:
                if f[6] in ("", execution.order.symbol):
                    self._exec_details(conn, f[2], execution)
                    self._commission_report(conn, execution)
            self._send(conn, 55, 1, f[2])
        elif msg_id == 9:
            self._contract_details(conn, req_id=f[2], symbol=f[4])
        elif msg_id == 97:
            self._tick_by_tick(conn, req_id=f[1], symbol=f[3], tick_type=f[14])

    def _contract_details(self, conn: socket.socket, req_id: str, symbol: str) -> None:
        """One SMART-routed US stock per scripted symbol (layout of server versions >= 164)."""
        if symbol not in self.conids:
            self._error(conn, req_id, 200, "No security definition has been found for the request")
            return
        self._send(conn, 10, req_id, symbol, "STK", "", 0, "", "SMART", "USD", symbol, "NMS", symbol,
                   self.conids[symbol], 0.01, "", "LMT,MKT", "SMART,NASDAQ", 1, 0, f"{symbol} INC",
                   "NASDAQ", "", "", "", "", "US/Eastern", "", "", "", "", 0,  # 0 secIds
                   1, "", "", "26", "", "COMMON", 1, 1, 100)
        self._send(conn, 52, 1, req_id)

    def _tick_by_tick(self, conn: socket.socket, req_id: str, symbol: str, tick_type: str) -> None:
        if symbol in self.reject:
            self._error(conn, req_id, *self.reject[symbol])
            return
        if tick_type == "AllLast":
            for time_s, price, size, exchange, *conditions in self.ticks.get(symbol, []):
                self._send(conn, 99, req_id, _TICK_TYPES["AllLast"], int(time_s), price, size, 0,
                           exchange, "".join(conditions))
                self._count_tick()
        elif tick_type == "BidAsk":
            for time_s, bid, bid_size, ask, ask_size in self.quotes.get(symbol, []):
                self._send(conn, 99, req_id, _TICK_TYPES["BidAsk"], int(time_s), bid, ask, bid_size,
                           ask_size, 0)
                self._count_tick()

    # -- orders --------------------------------------------------------------------------------

    def _place_order(self, conn: socket.socket, f: tuple[str, ...], may_hold: bool = True) -> None:
        """placeOrder at >= 145: [3, orderId, contract (12 fields, primaryExchange included),
        secIdType, secId, action, totalQuantity, orderType, lmtPrice, auxPrice, tif, ocaGroup,
        account, openClose, origin, orderRef, transmit, ...]."""
        order_id, symbol = int(f[1]), f[3]
        values = {"action": f[16], "quantity": float(f[17]), "order_type": f[18],
                  "limit_price": float(f[19]) if f[19] else None, "tif": f[21], "order_ref": f[26]}
        order = self.orders.get(order_id)
        if order is None:
            if may_hold and symbol in self.hold:
                self.held.append(f)
                return
            if symbol in self.order_reject:
                self._error(conn, str(order_id), 201, f"Order rejected - reason:{self.order_reject[symbol]}")
                return
            self.conids.setdefault(symbol, 300000 + len(self.conids))
            order = FakeOrder(order_id, self.client_id or 0, 1_000_000 + len(self.orders) + 1, symbol,
                              account=f[23] or self.account, **values)
            self.orders[order_id] = order
        elif order.status in _DONE:
            self._error(conn, str(order_id), 104, f"Cannot modify an order that is {order.status}")
            return
        elif may_hold and order.symbol in self.hold_changes:
            self.held.append(f)
            return
        else:
            for name, value in values.items():
                setattr(order, name, value)
        self._open_order(conn, order)
        self._order_status(conn, order)
        self._match(conn, order)

    def _cancel_order(self, conn: socket.socket, order_id: int, fields: tuple[str, ...] | None = None,
                      may_hold: bool = True) -> None:
        order = self.orders.get(order_id)
        if may_hold and fields is not None and order is not None and order.symbol in self.hold_changes:
            self.held.append(fields)
        elif order is None:
            self._error(conn, str(order_id), 10147,
                        f"OrderId {order_id} that needs to be cancelled is not found.")
        elif order.status in _DONE:
            self._error(conn, str(order_id), 10148, f"OrderId {order_id} that needs to be cancelled cannot "
                        f"be cancelled, state: {order.status}.")
        else:
            order.status = "Cancelled"
            self._error(conn, str(order_id), 202, "Order Canceled - reason:")
            self._order_status(conn, order)

    def _match(self, conn: socket.socket, order: FakeOrder) -> None:
        """Fill what is marketable (see the module docstring)."""
        mark = self.marks.get(order.symbol)
        if mark is None or order.status in _DONE:
            return
        if order.order_type == "LMT" and order.limit_price is not None and (
                mark > order.limit_price if order.action == "BUY" else mark < order.limit_price):
            return
        while order.remaining > 0 and (available := self.liquidity.get(order.symbol, math.inf)) > 0:
            shares = min(order.remaining, available, self.max_lot or math.inf)
            if order.symbol in self.liquidity:
                self.liquidity[order.symbol] = available - shares
            order.filled += shares
            order.notional += shares * mark
            order.last_price = mark
            if order.remaining <= 0:
                order.status = "Filled"
            commission = (None if self.commission_per_share is None
                          else round(max(1.0, shares * self.commission_per_share), 4))
            execution = FakeExecution(f"0000e0d5.{order.perm_id:08x}.{len(self.executions) + 1:02d}.01",
                                      order, shares, mark, order.filled, order.avg_price,
                                      time.strftime("%Y%m%d %H:%M:%S UTC", time.gmtime()), commission)
            self.executions.append(execution)
            for message in self.fill_order:
                if message == "exec":
                    self._exec_details(conn, "-1", execution)
                elif message == "commission":
                    self._commission_report(conn, execution)
                else:
                    self._order_status(conn, order)

    def _contract(self, symbol: str) -> tuple[object, ...]:
        """conId, symbol, secType, lastTradeDate, strike, right, multiplier, exchange, currency,
        localSymbol, tradingClass (no primaryExchange in these server messages)."""
        return self.conids.get(symbol, 0), symbol, "STK", "", 0, "", "", "SMART", "USD", symbol, "NMS"

    def _open_order(self, conn: socket.socket, o: FakeOrder) -> None:
        lmt = "" if o.limit_price is None else o.limit_price
        self._send(conn, 5, o.order_id, *self._contract(o.symbol),
                   # action .. faPercentage (21 order fields; the 18th is the old sharesAllocation)
                   o.action, o.quantity, o.order_type, lmt, "", o.tif, "", o.account, "", 0, o.order_ref,
                   o.client_id, o.perm_id, 0, 0, 0, "", "", "", "", "",
                   *[""] * 29,  # modelCode .. deltaNeutralAuxPrice (no delta-neutral order type)
                   *[""] * 7,  # continuousUpdate .. comboLegsDescrip
                   0, 0, 0,  # combo legs, order combo legs, smart combo routing params
                   "", "", "",  # scaleInitLevelSize, scaleSubsLevelSize, scalePriceIncrement (unset)
                   "",  # hedgeType
                   "", "", "", "", 0,  # optOutSmartRouting .. notHeld, no delta-neutral contract
                   "",  # algoStrategy
                   "", 0, o.status,  # solicited, whatIf, the order state's status
                   *[""] * 16,  # margins, commission fields, warningText, randomizeSize/Price
                   0,  # conditions
                   *[""] * 16,  # adjustedOrderType .. usePriceMgmtAlgo
                   *[""] * 8)  # duration, postToAts, autoCancelParent, the five PEG fields

    def _completed_order(self, conn: socket.socket, o: FakeOrder) -> None:
        lmt = "" if o.limit_price is None else o.limit_price
        self._send(conn, 101, *self._contract(o.symbol),
                   o.action, o.quantity, o.order_type, lmt, "", o.tif, "", o.account, "", 0, o.order_ref,
                   o.perm_id, 0, 0, 0, "", "", "", "",  # permId .. faPercentage
                   *[""] * 23,  # modelCode .. deltaNeutralAuxPrice
                   *[""] * 5,  # continuousUpdate .. comboLegsDescrip
                   0, 0, 0, "", "", "", "",  # legs, params, scale (unset), hedgeType
                   "", "", "", 0, "",  # clearingAccount, clearingIntent, notHeld, no dnc, algoStrategy
                   "", o.status, "", "",  # solicited, status, randomizeSize, randomizePrice
                   0,  # conditions
                   *[""] * 6, o.filled, *[""] * 6,  # trailStopPrice .. filledQuantity .. parentPermId
                   time.strftime("%Y%m%d %H:%M:%S UTC", time.gmtime()), o.status,  # completedTime/Status
                   *[""] * 5)  # the five PEG fields

    def _order_status(self, conn: socket.socket, o: FakeOrder) -> None:
        self._send(conn, 3, o.order_id, o.status, o.filled, o.remaining, o.avg_price, o.perm_id, 0,
                   o.last_price, o.client_id, "", "")

    def _exec_details(self, conn: socket.socket, req_id: str, e: FakeExecution) -> None:
        o = e.order
        self._send(conn, 11, req_id, o.order_id, *self._contract(o.symbol), e.exec_id, e.time, o.account,
                   "ISLAND", "BOT" if o.action == "BUY" else "SLD", e.shares, e.price, o.perm_id,
                   o.client_id, 0, e.cum_qty, e.avg_price, o.order_ref, "", "", "", 1, 0)

    def _commission_report(self, conn: socket.socket, e: FakeExecution) -> None:
        if e.commission is not None:
            self._send(conn, 59, 1, e.exec_id, e.commission, "USD", "", "", "")

    def _count_tick(self) -> None:
        self.ticks_sent += 1
        if self.disconnect_after is not None and self.ticks_sent >= self.disconnect_after:
            self._drop_client()
            raise _Hangup

    def _error(self, conn: socket.socket, req_id: str, code: int, text: str) -> None:
        self._send(conn, 4, 2, req_id, code, text, "")  # last: advancedOrderRejectJson

    def _send(self, conn: socket.socket, *fields: object) -> None:
        payload = "".join(f"{_text(v)}\0" for v in fields).encode()
        conn.sendall(_LEN.pack(len(payload)) + payload)

    def _drop_client(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()


def _text(value: object) -> str:
    """A field as TWS writes it: integral numbers without a decimal point (sizes, ids)."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _version_range(payload: bytes) -> tuple[int, int]:
    """``b"v157..178 +PACEAPI"`` -> (157, 178)."""
    low, _, high = payload.decode().split()[0].removeprefix("v").partition("..")
    return int(low), int(high or low)


def _read_message(conn: socket.socket) -> tuple[str, ...] | None:
    """One length-prefixed message as its fields, or None at end of stream."""
    try:
        size = _LEN.unpack(_recv_exact(conn, 4))[0]
        body = _recv_exact(conn, size)
    except ConnectionError:
        return None
    return tuple(body.decode().split("\0")[:-1])


def _recv_exact(conn: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = conn.recv(n - len(data))
        if not chunk:
            raise ConnectionError("client closed the connection")
        data += chunk
    return data

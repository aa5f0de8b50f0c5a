"""Wire decoding benchmark: many small Kafka messages, decoded one stream at a time
(``wire.decode``, the baseline) and with ``wire.decode_all`` (the schema message parsed once per
distinct schema), then the speed layer's whole driver-side step, ``decode_and_validate``.

    .venv/bin/python benchmarks/wire_decode.py [--messages 2000] [--ticks-per-message 10] [--repeat 5]

Messages: simulator trades of 10 symbols, ``--ticks-per-message`` ticks of one symbol each, wire
encoding without compression (as ``benchmarks/speed_layer.py --wire-compression none`` sends
them). Every figure is the best of ``--repeat`` runs, in microseconds per message; the decoded
tables are checked equal. Needs no stack. Prints the JSON last and writes
benchmarks/results/wire_decode.json:
{"messages", "ticks_per_message", "decode_us", "decode_all_us", "speedup", "decode_and_validate_us"}
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import pyarrow as pa  # noqa: E402

from ingestion import wire  # noqa: E402
from ingestion.simulator import MarketSimulator, SimulatorConfig  # noqa: E402
from tradelake.config import load_config  # noqa: E402


def messages(count: int, ticks: int) -> list[tuple[bytes, bytes, int]]:
    """(key, value, broker timestamp ms) of ``count`` trade messages of ``ticks`` ticks each."""
    sim = MarketSimulator(SimulatorConfig(symbols=tuple(f"S{i:02d}" for i in range(10)), seed=5,
                                          start_date=date(2026, 3, 2), days=1,
                                          trades_per_symbol_per_day=count * ticks // 10 + ticks,
                                          quotes_per_trade=0.0))
    out = []
    for kind, batch in sim.batches(max_rows=ticks, by_symbol=True):
        if kind != "trade" or batch.num_rows != ticks:
            continue
        out.append((batch.column("symbol")[0].as_py().encode(), wire.encode(batch, "none"),
                    batch.column("ts")[0].as_py() // 1_000_000))
        if len(out) == count:
            return out
    raise RuntimeError(f"the simulator gave {len(out)} full messages, {count} wanted")


def best_us(fn, repeat: int, per: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times) / per * 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], epilog=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--ticks-per-message", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)

    from spark_jobs.speed_layer import decode_and_validate

    cfg = load_config()
    feed = messages(args.messages, args.ticks_per_message)
    values = [value for _, value, _ in feed]
    one_by_one = [wire.decode(v) for v in values]
    together = wire.decode_all(values)
    if not all(isinstance(b, pa.Table) and a.equals(b) for a, b in zip(one_by_one, together, strict=True)):
        print("decode_all and decode disagree", file=sys.stderr)
        return 1
    raw = pa.table({"topic": ["bench.trades"] * len(feed), "partition": pa.array([0] * len(feed), pa.int32()),
                    "offset": pa.array(range(len(feed)), pa.int64()),
                    "kafka_ts_ms": pa.array([ts for _, _, ts in feed], pa.int64()),
                    "key": [key for key, _, _ in feed], "value": values})
    n = len(feed)
    result = {
        "messages": n, "ticks_per_message": args.ticks_per_message,
        "decode_us": round(best_us(lambda: [wire.decode(v) for v in values], args.repeat, n), 2),
        "decode_all_us": round(best_us(lambda: wire.decode_all(values), args.repeat, n), 2),
        "decode_and_validate_us": round(best_us(
            lambda: list(decode_and_validate(raw.to_batches(), {"bench.trades": "trade"}, cfg.ingest)),
            args.repeat, n), 2),
        "repeat": args.repeat,
    }
    result["speedup"] = round(result["decode_us"] / result["decode_all_us"], 2)
    print(f"per message: decode {result['decode_us']} us, decode_all {result['decode_all_us']} us "
          f"(x{result['speedup']}); decode_and_validate {result['decode_and_validate_us']} us",
          file=sys.stderr)
    out = ROOT / "benchmarks" / "results" / "wire_decode.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())

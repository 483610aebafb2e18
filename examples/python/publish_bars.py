#!/usr/bin/env python3
"""Publish 5m bars from a CSV file to the pipeline, with publisher confirms.

    python3 publish_bars.py --amqp-url amqp://guest:guest@127.0.0.1:5672/ --csv BTCUSDT_5m.csv

The CSV is the one `pipeline publish` reads: header `timestamp,open,high,low,close,volume` (and
optionally `symbol`); `timestamp` is the bar's OPEN time, `2025-04-03 17:05:00+00:00` or epoch
milliseconds. The symbol comes from --symbol, else the `symbol` column, else a file name that is
exactly a symbol (BTCUSDT.csv, BTCUSDT_5m.csv).

Each bar goes to the exchange `market.bars` with routing key `bars.5m.<symbol>`, one JSON bar per
message, persistent, content type application/json, messageId `<symbol>:5m:<ts>`, `mandatory`
(a bar no queue takes is an error, not silently dropped), and waits for the broker's confirm.
Publishing again after a failure is safe: the pipeline acknowledges and drops a bar it has already
accepted (same symbol and ts), so re-run the whole file.

Exit status: 0 when every bar was confirmed (last line `published <n>`); 1 when a row was rejected
(the valid rows are still published) or the broker refused a bar; 2 on bad arguments or when the
broker cannot be reached. Needs pika (`pip install pika`, or Debian's python3-pika).
"""
import argparse
import csv
import json
import math
import os
import re
import sys
from datetime import datetime

try:
    import pika
    from pika.exceptions import AMQPError, NackError, UnroutableError
except ImportError:  # pragma: no cover - a message for the user, not a code path
    sys.exit("publish_bars.py needs pika: pip install pika (or apt-get install python3-pika)")

EXCHANGE = "market.bars"
FIVE_MINUTES_MS = 300_000
SYMBOL = re.compile(r"^[A-Za-z0-9._\-/]{1,32}$")
FILE_SYMBOL = re.compile(r"^([A-Z0-9]{2,32})(?:_\d+[smhdw])?\.csv$", re.IGNORECASE)


def parse_ts(value):
    """Epoch milliseconds (UTC) of a CSV timestamp, or raise ValueError saying why."""
    value = value.strip()
    if value.isdigit():
        ms = int(value)
        if ms < 10**11:
            raise ValueError(f"timestamp {value} looks like epoch seconds; give epoch milliseconds")
        return ms
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"timestamp {value!r} is neither epoch milliseconds nor YYYY-MM-DD HH:MM:SS+zone") from None
    if when.tzinfo is None:
        raise ValueError(f"timestamp {value!r} has no time zone; add +00:00 for UTC")
    return round(when.timestamp() * 1000)


def parse_row(row, symbol):
    """The wire contract's bar of one CSV row, or raise ValueError saying why it is not one."""
    ts = parse_ts(row.get("timestamp") or "")
    if ts % FIVE_MINUTES_MS != 0:
        raise ValueError(f"timestamp {ts} is not a multiple of 5 minutes: give the bar's open time")
    bar = {"symbol": symbol, "timeframe": "5m", "ts": ts}
    for field in ("open", "high", "low", "close", "volume"):
        try:
            number = float(row.get(field) or "")
        except ValueError:
            raise ValueError(f"{field} {row.get(field)!r} is not a number") from None
        if not math.isfinite(number):
            raise ValueError(f"{field} must be finite")
        bar[field] = int(number) if number.is_integer() and abs(number) < 2**53 else number
    for field in ("open", "high", "low", "close"):
        if bar[field] <= 0:
            raise ValueError(f"{field} must be greater than 0")
    if bar["volume"] < 0:
        raise ValueError("volume must not be negative")
    if not bar["low"] <= min(bar["open"], bar["close"]) <= max(bar["open"], bar["close"]) <= bar["high"]:
        raise ValueError("need low <= min(open, close) and max(open, close) <= high")
    return bar


def file_symbol(path):
    match = FILE_SYMBOL.match(os.path.basename(path))
    return match.group(1).upper() if match else None


def main():
    parser = argparse.ArgumentParser(description="Publish 5m bars from a CSV file with publisher confirms.")
    parser.add_argument("--amqp-url", default=os.environ.get("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/"),
                        help="broker URL; a vhost in the path is honoured (default: $AMQP_URL or the local broker)")
    parser.add_argument("--csv", required=True, help="CSV file: timestamp,open,high,low,close,volume[,symbol]")
    parser.add_argument("--symbol", help="symbol of every bar (else the symbol column, else the file name)")
    args = parser.parse_args()

    if args.symbol is not None and not SYMBOL.match(args.symbol):
        parser.error("--symbol must be 1 to 32 of A-Z a-z 0-9 . _ - /")
    try:
        handle = open(args.csv, newline="", encoding="utf-8-sig")
    except OSError as err:
        parser.error(f"cannot read --csv {args.csv}: {err.strerror}")
    with handle:
        reader = csv.DictReader(handle)
        columns = set(reader.fieldnames or [])
        missing = [c for c in ("timestamp", "open", "high", "low", "close", "volume") if c not in columns]
        if missing:
            parser.error(f"{args.csv}: the header lacks {', '.join(missing)} (need timestamp,open,high,low,close,volume)")
        default_symbol = args.symbol or (None if "symbol" in columns else file_symbol(args.csv))
        if default_symbol is None and "symbol" not in columns:
            parser.error(f"{args.csv}: no symbol: give --symbol, add a symbol column, or name the file <SYMBOL>.csv")
        bars, rejected = [], 0
        for line, row in enumerate(reader, start=2):
            symbol = default_symbol or (row.get("symbol") or "").strip()
            try:
                if not SYMBOL.match(symbol):
                    raise ValueError(f"symbol {symbol!r} must be 1 to 32 of A-Z a-z 0-9 . _ - /")
                bars.append(parse_row(row, symbol))
            except ValueError as err:
                rejected += 1
                print(f"{args.csv}:{line}: rejected: {err}", file=sys.stderr)

    try:
        connection = pika.BlockingConnection(pika.URLParameters(args.amqp_url))
    except AMQPError as err:
        print(f"cannot connect to the broker at --amqp-url: {err!r}; check the URL, its vhost and the credentials", file=sys.stderr)
        return 2
    published = 0
    try:
        channel = connection.channel()
        # Same declaration as the pipeline's (a no-op when it exists).
        channel.exchange_declare(exchange=EXCHANGE, exchange_type="topic", durable=True)
        # From here basic_publish returns only once the broker has confirmed the message, and raises
        # UnroutableError (mandatory: no queue took it) or NackError (the broker refused it).
        channel.confirm_delivery()
        for bar in bars:
            message_id = f"{bar['symbol']}:5m:{bar['ts']}"
            channel.basic_publish(
                exchange=EXCHANGE,
                routing_key=f"bars.5m.{bar['symbol']}",
                body=json.dumps(bar, separators=(",", ":")).encode("utf-8"),
                properties=pika.BasicProperties(
                    content_type="application/json",
                    delivery_mode=2,  # persistent
                    message_id=message_id,
                ),
                mandatory=True,
            )
            published += 1
    except UnroutableError:
        print(f"bar {published + 1} is unroutable: no queue is bound to {EXCHANGE} for it. Has the pipeline "
              "declared its queues on this vhost (start it once, or run `pipeline publish` once)?", file=sys.stderr)
        return 1
    except NackError:
        print(f"the broker refused bar {published + 1} (nack); publish the file again: bars already accepted are dropped by the pipeline",
              file=sys.stderr)
        return 1
    except AMQPError as err:
        print(f"lost the broker after {published} confirmed bars: {err!r}; publish the file again (re-sent bars are dropped)",
              file=sys.stderr)
        return 1
    finally:
        if connection.is_open:
            connection.close()
    if rejected:
        print(f"{rejected} rows rejected (see above)", file=sys.stderr)
    print(f"published {published}")
    return 1 if rejected else 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Follow the pipeline's integrated results on a queue of your own, one JSON line per result.

    python3 consume_results.py --amqp-url amqp://guest:guest@127.0.0.1:5672/ --queue my-results \
        --symbols BTCUSDT,ETHUSDT --count 10

Declares the durable queue --queue (yours: nobody else consumes it) and binds it to the exchange
`pipeline.results` with `results.<symbol>` for each of --symbols, or with `results.#` (every symbol)
without it. Results published while the consumer is away wait in the queue, so after a restart it
carries on where it stopped. Only integrated results are published on `pipeline.results`: a queue
bound with `results.#` (or `#`) receives results and nothing else.

Each result is printed on stdout as one line of JSON (the message body, unchanged) and acknowledged
after it is printed: a crash between the two gives the result again on the next run. Results are
de-duplicated by messageId (`<symbol>:5m:<ts>`): the pipeline may deliver a result twice when a
worker dies between publishing it and recording that it did; the copy is acknowledged and skipped.
The memory of seen ids is this process's: a consumer that must never print a result twice across
its own restarts keeps the last ts it handled per symbol and skips results at or before it.

With --count N it exits 0 after N results (results the broker had already sent beyond N go back to
the queue, unacknowledged). Needs pika (`pip install pika`, or Debian's python3-pika).
"""
import argparse
import collections
import os
import re
import sys

try:
    import pika
    from pika.exceptions import AMQPError
except ImportError:  # pragma: no cover - a message for the user, not a code path
    sys.exit("consume_results.py needs pika: pip install pika (or apt-get install python3-pika)")

EXCHANGE = "pipeline.results"
SYMBOL = re.compile(r"^[A-Za-z0-9._\-/]{1,32}$")
SEEN_IDS = 100_000  # how many recent messageIds are remembered for de-duplication


def main():
    parser = argparse.ArgumentParser(description="Print integrated results from a queue of your own as JSON lines.")
    parser.add_argument("--amqp-url", default=os.environ.get("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/"),
                        help="broker URL; a vhost in the path is honoured (default: $AMQP_URL or the local broker)")
    parser.add_argument("--queue", required=True, help="name of your durable queue (created if missing)")
    parser.add_argument("--symbols", help="comma-separated symbols (default: every symbol)")
    parser.add_argument("--count", type=int, help="exit 0 after this many results")
    args = parser.parse_args()
    symbols = [s.strip() for s in (args.symbols or "").split(",") if s.strip()]
    bad = [s for s in symbols if not SYMBOL.match(s)]
    if bad:
        parser.error(f"not a symbol: {', '.join(bad)} (1 to 32 of A-Z a-z 0-9 . _ - /)")
    if args.count is not None and args.count < 1:
        parser.error("--count must be at least 1")
    if args.queue.startswith("amq."):
        parser.error("--queue must not start with amq. (reserved by RabbitMQ)")

    try:
        connection = pika.BlockingConnection(pika.URLParameters(args.amqp_url))
    except AMQPError as err:
        print(f"cannot connect to the broker at --amqp-url: {err!r}; check the URL, its vhost and the credentials", file=sys.stderr)
        return 2
    channel = connection.channel()
    channel.exchange_declare(exchange=EXCHANGE, exchange_type="topic", durable=True)
    channel.queue_declare(queue=args.queue, durable=True)
    for key in [f"results.{s}" for s in symbols] or ["results.#"]:
        channel.queue_bind(queue=args.queue, exchange=EXCHANGE, routing_key=key)
    channel.basic_qos(prefetch_count=min(args.count or 100, 100))

    seen = collections.OrderedDict()
    printed = 0

    def on_result(ch, method, properties, body):
        nonlocal printed
        message_id = properties.message_id
        if message_id is not None and message_id in seen:
            ch.basic_ack(method.delivery_tag)  # a re-delivered copy: already printed
            return
        sys.stdout.write(body.decode("utf-8").strip() + "\n")
        sys.stdout.flush()
        ch.basic_ack(method.delivery_tag)  # after printing: a crash before this gives it again
        if message_id is not None:
            seen[message_id] = True
            if len(seen) > SEEN_IDS:
                seen.popitem(last=False)
        printed += 1
        if args.count is not None and printed >= args.count:
            ch.stop_consuming()

    channel.basic_consume(queue=args.queue, on_message_callback=on_result)
    try:
        channel.start_consuming()
    except KeyboardInterrupt:
        channel.stop_consuming()
    except AMQPError as err:
        print(f"lost the broker after {printed} results: {err!r}; run again: the queue kept what was not acknowledged",
              file=sys.stderr)
        return 1
    finally:
        if connection.is_open:
            connection.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

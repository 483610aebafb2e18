#!/usr/bin/env python3
"""Stream integrated results from the gateway's WebSocket, one JSON line per result.

    GATEWAY_API_KEY=<viewer key> python3 stream_ws.py --url http://127.0.0.1:8080 --symbols BTCUSDT,ETHUSDT

Connects to `/ws?symbols=...` and sends the key as `Authorization: Bearer <key>` on the upgrade
(the key never goes into a URL). With --ticket it first asks `POST /api/ws-ticket` for a single-use
ticket and connects to `/ws?symbols=...&ticket=<ticket>` instead, as a browser must; a gateway
without that endpoint (it answers 404) is told so on stderr and the header is used.

Each result is printed on stdout as one line of JSON (the frame, unchanged), in ts order per symbol.
When the connection drops (a restart of the gateway, a network cut, or close code 1013 because this
client read too slowly) it reconnects with backoff, then fetches the results it missed from
`GET /api/results/<symbol>?limit=...` and prints those newer than the last one it printed for that
symbol, so nothing is skipped or printed twice (results are identified by symbol and ts, which is
what the messageId `<symbol>:5m:<ts>` says). With --count N it exits 0 after N results.

The key comes from --key or, better (a command line is visible to other users of the machine), from
the environment variable GATEWAY_API_KEY. Needs websockets (`pip install websockets`, or Debian's
python3-websockets).
"""
import argparse
import asyncio
import json
import os
import random
import sys
import urllib.error
import urllib.parse
import urllib.request

try:
    import websockets
    from websockets.exceptions import ConnectionClosed, InvalidHandshake
except ImportError:  # pragma: no cover - a message for the user, not a code path
    sys.exit("stream_ws.py needs websockets: pip install websockets (or apt-get install python3-websockets)")

# websockets 14 renamed the keyword of the extra request headers.
HEADERS_KEYWORD = "additional_headers" if int(websockets.version.version.split(".")[0]) >= 14 else "extra_headers"
MISSED_LIMIT = 1000  # most results /api/results/<symbol> gives at once


def status_of(err):
    """The HTTP status of a refused upgrade (websockets < 14: status_code; 14 and later: response)."""
    status = getattr(err, "status_code", None)
    response = getattr(err, "response", None)
    return status if status is not None else getattr(response, "status_code", None)


class Done(Exception):
    """--count results printed."""


def http_json(method, url, key, body=None):
    data = None if body is None else json.dumps(body).encode("utf-8")
    request = urllib.request.Request(url, data=data, method=method, headers={"Authorization": f"Bearer {key}"})
    if data is not None:
        request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read().decode("utf-8"))


def ws_url(base, symbols, ticket=None):
    parts = urllib.parse.urlsplit(base)
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
    query = {"symbols": ",".join(symbols)}
    if ticket is not None:
        query["ticket"] = ticket
    return urllib.parse.urlunsplit((scheme, parts.netloc, parts.path.rstrip("/") + "/ws", urllib.parse.urlencode(query, safe=","), ""))


class Streamer:
    def __init__(self, args, key):
        self.args = args
        self.key = key
        self.printed = 0
        self.last_ts = {}  # symbol -> ts of the last result printed
        self.use_ticket = args.ticket

    def emit(self, text, result):
        symbol, ts = result.get("symbol"), result.get("ts")
        if ts is not None and ts <= self.last_ts.get(symbol, -1):
            return  # already printed (from the catch-up, or a re-sent result)
        sys.stdout.write(text.strip() + "\n")
        sys.stdout.flush()
        self.last_ts[symbol] = ts
        self.printed += 1
        if self.args.count is not None and self.printed >= self.args.count:
            raise Done()

    def connect_args(self):
        """The URL and keyword arguments of one connection: a fresh ticket each time, or the header."""
        if self.use_ticket:
            try:
                answer = http_json("POST", self.args.url.rstrip("/") + "/api/ws-ticket", self.key, {})
                return ws_url(self.args.url, self.args.symbols, answer["ticket"]), {}
            except urllib.error.HTTPError as err:
                if err.code != 404:
                    raise
                print("this gateway has no POST /api/ws-ticket (404: an older gateway contract); "
                      "sending the key in the Authorization header of the upgrade instead", file=sys.stderr)
                self.use_ticket = False
        return ws_url(self.args.url, self.args.symbols), {HEADERS_KEYWORD: [("Authorization", f"Bearer {self.key}")]}

    def catch_up(self):
        """After a reconnect: print the results missed while away, from the HTTP API."""
        for symbol in self.args.symbols:
            if symbol not in self.last_ts:
                continue
            url = f"{self.args.url.rstrip('/')}/api/results/{urllib.parse.quote(symbol, safe='')}?limit={MISSED_LIMIT}"
            for result in http_json("GET", url, self.key):
                self.emit(json.dumps(result, separators=(",", ":")), result)

    async def run(self):
        attempt = 0
        connected_before = False
        while True:
            try:
                url, kwargs = await asyncio.get_running_loop().run_in_executor(None, self.connect_args)
                async with websockets.connect(url, max_size=2**22, **kwargs) as socket:
                    attempt = 0
                    how = "a ticket" if "ticket=" in url else "the Authorization header"
                    print(f"connected to {ws_url(self.args.url, self.args.symbols)} with {how}", file=sys.stderr)
                    if connected_before:
                        print("reconnected; fetching the results missed meanwhile", file=sys.stderr)
                        await asyncio.get_running_loop().run_in_executor(None, self.catch_up)
                    connected_before = True
                    async for frame in socket:
                        text = frame if isinstance(frame, str) else frame.decode("utf-8")
                        result = json.loads(text)
                        if result.get("type") == "stats":
                            continue  # only sent when asked for with stats=1
                        self.emit(text, result)
                    print(f"the gateway closed the connection (code {socket.close_code})", file=sys.stderr)
            except InvalidHandshake as err:
                status = status_of(err)
                if status in (401, 403):
                    print(f"the gateway refused the key ({status}): give a viewer key in GATEWAY_API_KEY or --key",
                          file=sys.stderr)
                    return 2
                print(f"the gateway refused the upgrade ({status or err})", file=sys.stderr)
            except urllib.error.HTTPError as err:
                if err.code in (401, 403):
                    print(f"the gateway refused the key ({err.code}): give a viewer key in GATEWAY_API_KEY or --key", file=sys.stderr)
                    return 2
                print(f"the gateway answered {err.code} to {err.url}", file=sys.stderr)
            except ConnectionClosed as err:
                reason = " (this client read too slowly)" if err.code == 1013 else ""
                print(f"connection closed with code {err.code}{reason}", file=sys.stderr)
            except (OSError, asyncio.TimeoutError) as err:
                print(f"cannot reach the gateway at {self.args.url}: {err}", file=sys.stderr)
                if not connected_before and attempt >= 2:
                    return 2
            delay = min(30.0, 2 ** attempt) * (0.5 + random.random() / 2)
            attempt += 1
            print(f"reconnecting in {delay:.1f} s", file=sys.stderr)
            await asyncio.sleep(delay)


def main():
    parser = argparse.ArgumentParser(description="Print integrated results from the gateway's WebSocket as JSON lines.")
    parser.add_argument("--url", default="http://127.0.0.1:8080", help="the gateway (default: http://127.0.0.1:8080)")
    parser.add_argument("--key", default=os.environ.get("GATEWAY_API_KEY"), help="a viewer key (default: $GATEWAY_API_KEY)")
    parser.add_argument("--symbols", required=True, help="comma-separated symbols")
    parser.add_argument("--ticket", action="store_true", help="connect with a single-use ticket from POST /api/ws-ticket")
    parser.add_argument("--count", type=int, help="exit 0 after this many results")
    args = parser.parse_args()
    args.symbols = [s.strip() for s in args.symbols.split(",") if s.strip()]
    if not args.symbols:
        parser.error("--symbols needs at least one symbol")
    if not args.key:
        parser.error("give a viewer key in GATEWAY_API_KEY (or --key)")
    if args.count is not None and args.count < 1:
        parser.error("--count must be at least 1")
    try:
        return asyncio.run(Streamer(args, args.key).run())
    except Done:
        return 0
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())

"""TCP relay that holds every chunk for a fixed time in each direction and counts Kafka requests.

    python delay_relay.py LISTEN_HOST:PORT TARGET_HOST:PORT DELAY_MS STATS_JSON

Used by plan_bench.py in front of the benchmark's broker: with DELAY_MS=20 a request/response
exchange costs 40 ms more (the 40 ms round trip `tc netem` would give, which this kernel lacks, see
docs/benchmarks.md); with DELAY_MS=0 it only counts. Client-to-broker bytes are parsed as Kafka
frames (int32 size, then int16 api_key), so the count is of requests whatever the client. Prints
"ready" once listening; on SIGTERM writes {"requests": n, "by_api_key": {...}, "connections": n, "waiting_s": s}
to STATS_JSON and exits; "waiting_s" is the wall time during which at least one request was waiting
for its response, so the 40 ms link's "waiting_s" minus loopback's is what the distance cost the
plan, without the CLI's own (noisy) time.
"""

import asyncio
import json
import os
import signal
import socket
import struct
import sys
from collections import Counter

requests = Counter()
connections = 0


class Busy:
    """Wall time during which at least one request is waiting for its response (all connections):
    a request counts from the moment its bytes reach the relay to the moment the relay hands its
    response to the client."""

    def __init__(self):
        self.outstanding = 0
        self.since = 0.0
        self.total = 0.0

    def sent(self, n, now):
        if n and self.outstanding == 0:
            self.since = now
        self.outstanding += n

    def answered(self, n, now):
        if not n or self.outstanding == 0:
            return
        self.outstanding = max(0, self.outstanding - n)
        if self.outstanding == 0:
            self.total += now - self.since

    def finish(self, now):
        if self.outstanding:
            self.total += now - self.since
            self.outstanding = 0


busy = Busy()


class Counting:
    """Splits a Kafka byte stream (int32 size, then the frame) into frames without holding large
    bodies; returns how many frames a chunk completes. `requests=True` also counts by api_key."""

    def __init__(self, requests=True):
        self.buf = b""
        self.owed = 0
        self.requests = requests

    def feed(self, data):
        done = 0
        if self.owed:
            take = min(self.owed, len(data))
            self.owed -= take
            data = data[take:]
            if self.owed == 0:
                done += 1
        self.buf += data
        while len(self.buf) >= (6 if self.requests else 4):
            (size,) = struct.unpack(">i", self.buf[:4])
            if self.requests:
                (api_key,) = struct.unpack(">h", self.buf[4:6])
                requests[api_key] += 1
            if len(self.buf) >= 4 + size:
                self.buf = self.buf[4 + size :]
                done += 1
            else:
                self.owed = 4 + size - len(self.buf)
                self.buf = b""
        return done


async def pump(reader, writer, delay, counter, responses=None, owed=None):
    loop = asyncio.get_running_loop()
    queue = asyncio.Queue()

    async def sender():
        while True:
            due, data = await queue.get()
            if data is None:
                break
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            writer.write(data)
            if responses is not None:
                n = min(responses.feed(data), owed[0])
                owed[0] -= n
                busy.answered(n, loop.time())
            await writer.drain()
        writer.close()

    task = asyncio.create_task(sender())
    try:
        while True:
            data = await reader.read(1 << 16)
            if not data:
                break
            if counter is not None:
                before = sum(requests.values())
                counter.feed(data)
                n = sum(requests.values()) - before
                owed[0] += n
                busy.sent(n, loop.time())
            queue.put_nowait((loop.time() + delay, data))
    except (ConnectionError, OSError):
        pass
    queue.put_nowait((loop.time() + delay, None))
    try:
        await task
    except (ConnectionError, OSError):
        pass


async def main():
    listen, target, delay_ms, stats = sys.argv[1:5]
    lhost, lport = listen.rsplit(":", 1)
    thost, tport = target.rsplit(":", 1)
    delay = float(delay_ms) / 1000

    async def handle(creader, cwriter):
        global connections
        connections += 1
        try:
            breader, bwriter = await asyncio.open_connection(thost, int(tport))
        except OSError:
            cwriter.close()
            return
        for w in (cwriter, bwriter):
            sock = w.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        owed = [0]  # this connection's requests still waiting for their responses
        await asyncio.gather(
            pump(creader, bwriter, delay, Counting(), owed=owed),
            pump(breader, cwriter, delay, None, Counting(requests=False), owed=owed),
        )
        # Requests a closed connection never got answers to stop counting as waiting.
        if owed[0]:
            busy.answered(owed[0], asyncio.get_running_loop().time())

    server = await asyncio.start_server(handle, lhost, int(lport), reuse_address=True, backlog=512)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print("ready", flush=True)
    await stop.wait()
    server.close()
    busy.finish(loop.time())
    with open(stats, "w") as f:
        json.dump(
            {
                "requests": sum(requests.values()),
                "by_api_key": dict(requests),
                "connections": connections,
                "waiting_s": round(busy.total, 3),
            },
            f,
        )
    # Connections still open are not drained: leave without cancelling their tasks.
    os._exit(0)


if __name__ == "__main__":
    asyncio.run(main())

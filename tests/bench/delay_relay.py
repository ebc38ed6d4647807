"""TCP relay that holds every chunk for a fixed time in each direction and counts Kafka requests.

    python delay_relay.py LISTEN_HOST:PORT TARGET_HOST:PORT DELAY_MS STATS_JSON

Used by plan_bench.py in front of the benchmark's broker: with DELAY_MS=20 a request/response
exchange costs 40 ms more (the 40 ms round trip `tc netem` would give, which this kernel lacks, see
docs/benchmarks.md); with DELAY_MS=0 it only counts. Client-to-broker bytes are parsed as Kafka
frames (int32 size, then int16 api_key), so the count is of requests whatever the client. Prints
"ready" once listening; on SIGTERM writes {"requests": n, "by_api_key": {...}, "connections": n}
to STATS_JSON and exits.
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


class Counting:
    """Splits the client's byte stream into Kafka frames without holding large bodies."""

    def __init__(self):
        self.buf = b""
        self.owed = 0

    def feed(self, data):
        if self.owed:
            take = min(self.owed, len(data))
            self.owed -= take
            data = data[take:]
        self.buf += data
        while len(self.buf) >= 6:
            (size,) = struct.unpack(">i", self.buf[:4])
            (api_key,) = struct.unpack(">h", self.buf[4:6])
            requests[api_key] += 1
            if len(self.buf) >= 4 + size:
                self.buf = self.buf[4 + size :]
            else:
                self.owed = 4 + size - len(self.buf)
                self.buf = b""


async def pump(reader, writer, delay, counter):
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
            await writer.drain()
        writer.close()

    task = asyncio.create_task(sender())
    try:
        while True:
            data = await reader.read(1 << 16)
            if not data:
                break
            if counter is not None:
                counter.feed(data)
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
        await asyncio.gather(
            pump(creader, bwriter, delay, Counting()),
            pump(breader, cwriter, delay, None),
        )

    server = await asyncio.start_server(handle, lhost, int(lport), reuse_address=True, backlog=512)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print("ready", flush=True)
    await stop.wait()
    server.close()
    with open(stats, "w") as f:
        json.dump(
            {"requests": sum(requests.values()), "by_api_key": dict(requests), "connections": connections}, f
        )
    # Connections still open are not drained: leave without cancelling their tasks.
    os._exit(0)


if __name__ == "__main__":
    asyncio.run(main())

"""The limits of this machine: msgpack alone, and raw TCP on 127.0.0.1.

Frames are a 4-byte big-endian length followed by the msgpack body.
io="trio": trio SocketStreams (what net is built on); io="socket": plain
blocking sockets. batch=N: frames are gathered into one send_all of at least
N bytes; batch=0: one send_all per message.
"""

from __future__ import annotations

import socket
import struct
import time

import msgpack
from benchlib import END_SEQ, SeqChecker, latency_summary, make_end, make_payload

_LEN = struct.Struct(">I")
_RECV = 65536


# --------------------------------------------------------------------- codec
def codec(ctl, iterations, **_):
    packb, unpackb = msgpack.packb, msgpack.unpackb
    msg = make_payload(0)
    size = len(packb(msg))
    t0 = time.perf_counter()
    for i in range(iterations):
        msg["seq"] = i
        if unpackb(packb(msg))["seq"] != i:
            raise AssertionError("round trip changed the payload")
    t1 = time.perf_counter()
    for i in range(iterations):
        msg["seq"] = i
        packb(msg)
    t2 = time.perf_counter()
    raw = packb(msg)
    for _i in range(iterations):
        unpackb(raw)
    t3 = time.perf_counter()
    ctl.result(rate=iterations / (t1 - t0), pack_rate=iterations / (t2 - t1),
               unpack_rate=iterations / (t3 - t2), packed_bytes=size)


# --------------------------------------------------------------------- framing
def _drain(buf: bytes, sink) -> int:
    """Decode every whole frame of buf; return where the rest starts, or -1 at the END."""
    mv = memoryview(buf)
    end = len(buf)
    pos = 0
    unpack_len, unpackb, see = _LEN.unpack_from, msgpack.unpackb, sink.chk.see
    while end - pos >= 4:
        (ln,) = unpack_len(buf, pos)
        stop = pos + 4 + ln
        if stop > end:
            break
        msg = unpackb(mv[pos + 4 : stop])
        pos = stop
        seq = msg["seq"]
        if seq >= 0:
            see(seq)
        elif seq == END_SEQ:
            sink.sent = msg["end"]
            return -1
    return pos


def _frame(obj) -> bytes:
    body = msgpack.packb(obj)
    return _LEN.pack(len(body)) + body


class _Sink:
    """The receiving side's state: the sequence checker and the END marker's count."""

    def __init__(self, n):
        self.chk = SeqChecker(n)
        self.sent = None

    def result(self, n):
        res = self.chk.result(self.sent if self.sent is not None else n)
        res["end_seen"] = self.sent is not None
        return res


def _messages(n, batch, payload_size, duration):
    """Yield the bytes to send: batches of >= batch bytes, or one frame each."""
    packb, pack_len = msgpack.packb, _LEN.pack
    limit = time.perf_counter() + duration if duration else None
    buf = bytearray()
    for seq in range(n):
        body = packb(make_payload(seq, payload_size))
        if batch:
            buf += pack_len(len(body))
            buf += body
            if len(buf) >= batch:
                yield bytes(buf)
                buf = bytearray()
        else:
            yield pack_len(len(body)) + body
        if limit and not seq & 255 and time.perf_counter() > limit:
            yield seq + 1  # count sent: stop
            break
    else:
        yield n
    if buf:
        yield bytes(buf)


# --------------------------------------------------------------------- publisher / subscriber
async def _trio_publisher(ctl, n, subscribers, batch, payload_size, duration):
    import trio

    streams = []
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]
    with trio.fail_after(max(ctl.time_left(), 1)):
        async with trio.open_nursery() as nursery:

            async def accept():
                while len(streams) < subscribers:
                    streams.append(await listeners[0].accept())

            nursery.start_soon(accept)
            ctl.ready(host="127.0.0.1", port=port)
            await ctl.wait_trio("GO")
        for ln in listeners:
            await ln.aclose()
        t0 = time.perf_counter()
        sent = 0
        for chunk in _messages(n, batch, payload_size, duration):
            if isinstance(chunk, int):
                sent = chunk
                continue
            for s in streams:
                await s.send_all(chunk)
        t1 = time.perf_counter()
        end = _frame(make_end(sent))
        for s in streams:
            await s.send_all(end)
        await ctl.wait_trio("STOP")
        for s in streams:
            await s.aclose()
    ctl.result(sent=sent, send_rate=sent / (t1 - t0))


async def _trio_subscriber(ctl, host, port, n):
    import trio

    sink = _Sink(n)
    with trio.fail_after(max(ctl.time_left(), 1)):
        stream = await trio.open_tcp_stream(host, port)
        ctl.ready()
        left = b""
        while True:
            data = await stream.receive_some(_RECV)
            if not data:
                break
            buf = left + data if left else data
            pos = _drain(buf, sink)
            if pos < 0:
                break
            left = buf[pos:]
        await stream.aclose()
    ctl.result(**sink.result(n))


def _socket_publisher(ctl, n, subscribers, batch, payload_size, duration):
    lsock = socket.create_server(("127.0.0.1", 0))
    lsock.settimeout(max(ctl.time_left(), 1))
    ctl.ready(host="127.0.0.1", port=lsock.getsockname()[1])
    conns = [lsock.accept()[0] for _ in range(subscribers)]
    lsock.close()
    ctl.wait("GO")
    t0 = time.perf_counter()
    sent = 0
    for chunk in _messages(n, batch, payload_size, duration):
        if isinstance(chunk, int):
            sent = chunk
            continue
        for c in conns:
            c.sendall(chunk)
    t1 = time.perf_counter()
    end = _frame(make_end(sent))
    for c in conns:
        c.sendall(end)
    ctl.wait("STOP")
    for c in conns:
        c.close()
    ctl.result(sent=sent, send_rate=sent / (t1 - t0))


def _socket_subscriber(ctl, host, port, n):
    sink = _Sink(n)
    sock = socket.create_connection((host, port), timeout=max(ctl.time_left(), 1))
    sock.settimeout(None)  # plain blocking reads; the party's watchdog bounds the time
    ctl.ready()
    left = b""
    while True:
        data = sock.recv(_RECV)
        if not data:
            break
        buf = left + data if left else data
        pos = _drain(buf, sink)
        if pos < 0:
            break
        left = buf[pos:]
    sock.close()
    ctl.result(**sink.result(n))


def publisher(ctl, n, io="trio", subscribers=1, batch=65536, payload_size=None, duration=None, **_):
    if io == "trio":
        import trio

        return trio.run(_trio_publisher, ctl, n, subscribers, batch, payload_size, duration)
    return _socket_publisher(ctl, n, subscribers, batch, payload_size, duration)


def subscriber(ctl, host, port, n, io="trio", **_):
    if io == "trio":
        import trio

        return trio.run(_trio_subscriber, ctl, host, port, n)
    return _socket_subscriber(ctl, host, port, n)


# --------------------------------------------------------------------- request / reply
class _TrioFrames:
    def __init__(self, stream):
        self.stream = stream
        self.buf = b""

    async def read(self):
        buf = self.buf
        while True:
            if len(buf) >= 4:
                (ln,) = _LEN.unpack_from(buf, 0)
                if len(buf) >= 4 + ln:
                    self.buf = buf[4 + ln :]
                    return buf[4 : 4 + ln]
            data = await self.stream.receive_some(_RECV)
            if not data:
                return None
            buf += data


class _SockFrames:
    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def read(self):
        buf = self.buf
        while True:
            if len(buf) >= 4:
                (ln,) = _LEN.unpack_from(buf, 0)
                if len(buf) >= 4 + ln:
                    self.buf = buf[4 + ln :]
                    return buf[4 : 4 + ln]
            data = self.sock.recv(_RECV)
            if not data:
                return None
            buf += data


def _reply(frame) -> bytes:
    msg = msgpack.unpackb(frame)
    return _frame({"seq": msg["seq"], "ok": True})


async def _trio_server(ctl):
    import trio

    served = 0

    async def handle(stream):
        nonlocal served
        frames = _TrioFrames(stream)
        while (frame := await frames.read()) is not None:
            await stream.send_all(_reply(frame))
            served += 1

    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    with trio.fail_after(max(ctl.time_left(), 1)):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(trio.serve_listeners, handle, listeners)
            ctl.ready(host="127.0.0.1", port=listeners[0].socket.getsockname()[1])
            await ctl.wait_trio("STOP")
            nursery.cancel_scope.cancel()
    ctl.result(served=served)


async def _trio_client(ctl, host, port, rounds, warmup):
    import trio

    clock = time.perf_counter_ns
    samples = []
    with trio.fail_after(max(ctl.time_left(), 1)):
        stream = await trio.open_tcp_stream(host, port)
        frames = _TrioFrames(stream)
        cpu0 = time.process_time()
        for i in range(warmup + rounds):
            t0 = clock()
            await stream.send_all(_frame(make_payload(i)))
            reply = msgpack.unpackb(await frames.read())
            t1 = clock()
            if reply["seq"] != i:
                raise AssertionError(f"reply for {reply['seq']}, expected {i}")
            if i >= warmup:
                samples.append(t1 - t0)
        await stream.aclose()
    ctl.result(**latency_summary(samples, cpu_s=time.process_time() - cpu0, calls=warmup + rounds))


def _socket_server(ctl):
    import selectors
    import threading

    lsock = socket.create_server(("127.0.0.1", 0))
    ctl.ready(host="127.0.0.1", port=lsock.getsockname()[1])
    served = 0
    done = threading.Event()

    def serve():
        nonlocal served
        sel = selectors.DefaultSelector()
        sel.register(lsock, selectors.EVENT_READ)
        while not done.is_set():
            for key, _ in sel.select(0.1):
                if key.fileobj is lsock:
                    conn = lsock.accept()[0]
                    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    sel.register(conn, selectors.EVENT_READ, _SockFrames(conn))
                    continue
                frames = key.data
                frame = frames.read()  # one blocking frame read: clients are strict req/rep
                if frame is None:
                    sel.unregister(key.fileobj)
                    key.fileobj.close()
                    continue
                key.fileobj.sendall(_reply(frame))
                served += 1

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    try:
        ctl.wait("STOP")
    finally:
        done.set()
        t.join(2)
    ctl.result(served=served)


def _socket_client(ctl, host, port, rounds, warmup):
    sock = socket.create_connection((host, port), timeout=max(ctl.time_left(), 1))
    sock.settimeout(None)  # plain blocking reads; the party's watchdog bounds the time
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    frames = _SockFrames(sock)
    clock = time.perf_counter_ns
    samples = []
    cpu0 = time.process_time()
    for i in range(warmup + rounds):
        t0 = clock()
        sock.sendall(_frame(make_payload(i)))
        reply = msgpack.unpackb(frames.read())
        t1 = clock()
        if reply["seq"] != i:
            raise AssertionError(f"reply for {reply['seq']}, expected {i}")
        if i >= warmup:
            samples.append(t1 - t0)
    sock.close()
    ctl.result(**latency_summary(samples, cpu_s=time.process_time() - cpu0, calls=warmup + rounds))


def server(ctl, io="trio", **_):
    if io == "trio":
        import trio

        return trio.run(_trio_server, ctl)
    return _socket_server(ctl)


def client(ctl, host, port, rounds, io="trio", warmup=200, **_):
    if io == "trio":
        import trio

        return trio.run(_trio_client, ctl, host, port, rounds, warmup)
    return _socket_client(ctl, host, port, rounds, warmup)

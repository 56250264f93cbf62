"""Tasks that use the host from inside a task: nested submit, objects, actors, logs."""

import logging
import os
import socket

import reef


@reef.task
def square(x: float) -> float:
    return x * x


@reef.task
def fan_out(n: int) -> float:
    """Submits square(i) for i in range(n) and sums the results: (n-1) n (2n-1) / 6."""
    pending = [reef.submit(square, float(i)) for i in range(n)]
    return sum(ref.value() for ref in pending)


@reef.task
def part_sum(xs: reef.ObjectRef, start: int, end: int) -> float:
    return float(sum(xs.view("d")[start:end]))


@reef.task
def split_sum(xs: reef.ObjectRef, parts: int) -> float:
    """Passes the object by reference to `parts` part_sum tasks and adds their results."""
    n = xs.size // 8
    refs = [reef.submit("part_sum", xs, n * p // parts, n * (p + 1) // parts) for p in range(parts)]
    return sum(r.value() for r in refs)


@reef.task
def make_f64s(n: int) -> reef.ObjectRef:
    """Puts 0.0 .. n-1 as little-endian f64s and returns that object (not a copy)."""
    return reef.put_f64s(range(n))


@reef.task
def stats(xs) -> dict:
    """Structured values both ways: a map with a list, nested (xs: a list of numbers)."""
    return {"n": len(xs), "sum": float(sum(xs)), "minmax": [min(xs), max(xs)], "ok": True}


@reef.task
def use_actor(name: str, xs: list) -> list:
    """Creates a named Counter, finds it again by name, feeds it xs; returns the totals."""
    created = reef.actor_create(Counter, 100, name=name)
    found = reef.actor_lookup(name)
    if found.id != created.id:
        raise RuntimeError("lookup found actor %d, created %d" % (found.id, created.id))
    totals = [found.call("add", x).value() for x in xs]
    totals.append(created.total().value())
    return totals


@reef.task
def sandbox_probe() -> str:
    """Tries a file, a directory listing, the scratch directory a `filesystem`
    grant gives, and a socket; one word per attempt."""

    def attempt(f):
        try:
            f()
            return "allowed"
        except OSError as e:
            return type(e).__name__

    def scratch():
        with open("/scratch/probe.txt", "w") as f:
            f.write("from python")
        with open("/scratch/probe.txt") as f:
            assert f.read() == "from python"

    file = attempt(lambda: open("/etc/passwd", "rb").read())
    listing = attempt(lambda: os.listdir("/"))
    written = attempt(scratch)
    sock = attempt(lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM).close())
    # bytes: a str host needs the idna codec, which is not in the snapshot
    lookup = attempt(lambda: socket.getaddrinfo(b"localhost", 80))
    return f"file={file} dir={listing} scratch={written} socket={sock} lookup={lookup}"


@reef.task
def tcp_request(port: int, text: str) -> str:
    """Sends text to 127.0.0.1:port and returns the reply (needs the `network` grant)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.connect(("127.0.0.1", port))
        s.sendall(text.encode())
        s.shutdown(socket.SHUT_WR)
        reply = b""
        while chunk := s.recv(4096):
            reply += chunk
    return reply.decode()


@reef.task
def chatty(msg: str) -> None:
    """Writes msg to the log three ways."""
    print("print:", msg)
    logging.info("logging: %s", msg)
    reef.warn("reef.warn: " + msg)


_REMEMBERED = []


@reef.task
def remember(n: int) -> list:
    """Appends n strings to a module-level list (writing pages all over the
    heap) and returns how many calls and strings the list holds: [1, n] in a
    fresh instance, more in an instance an earlier task left behind."""
    _REMEMBERED.append(["%d-%d" % (len(_REMEMBERED), i) for i in range(n)])
    return [len(_REMEMBERED), sum(len(batch) for batch in _REMEMBERED)]


@reef.actor
class Counter:
    def __init__(self, start: int = 0):
        self.n = start

    def add(self, k: int) -> int:
        self.n += k
        return self.n

    def total(self) -> int:
        return self.n

    def explode(self, msg: str):
        """Raises: the call fails, the actor lives on."""
        raise RuntimeError(msg)

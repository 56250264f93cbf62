"""The seed demo in Python: the same exports as examples/guests/demo (Rust)."""

import reef


@reef.task
def sum_slice(xs: reef.ObjectRef, start: int, end: int) -> float:
    """Sums xs[start:end] of an object of little-endian f64s (in the node, over the
    object's stored bytes: nothing is copied into the guest)."""
    n = xs.f64_len()
    if not 0 <= start <= end <= n:
        raise reef.BadArgument("range %d..%d is outside 0..%d" % (start, end, n))
    return xs.sum_f64(start, end)


@reef.task
def noop() -> None:
    return None


@reef.task
def echo(data: reef.Raw) -> bytes:
    """Returns argument 0's raw bytes unchanged (bytes results are returned raw)."""
    return data


@reef.task
def add(a: float, b: float) -> float:
    return a + b


@reef.task
def fail(msg: str):
    """Raises ValueError(msg): the driver gets the exception text and the traceback."""
    raise ValueError(msg)


@reef.actor
class Accumulator:
    def __init__(self, initial: float = 0.0):
        self._total = initial

    def add(self, x: float) -> float:
        """Adds x; returns the running total."""
        self._total += x
        return self._total

    def total(self) -> float:
        return self._total

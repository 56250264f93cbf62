"""Ray's side of `make bench-ray`: the workloads of Reef's benches, run on a local Ray.

Two ways to run it (with the venv made by scripts/install-ray.sh):

    python bench_ray.py [--cpus N]           runs every workload once and prints one
                                             JSON line per figure:
                                             {"figure": ..., "value": ..., "unit": ...}
    python bench_ray.py --serve [--cpus N]   reads one JSON request a line on stdin,
                                             {"cmd": NAME, ...arguments}, and answers
                                             each with one JSON line on stdout (raw
                                             samples, so the caller can alternate
                                             batches with Reef's and take medians)

Ray is started once with `ray.init()` on this machine with N CPUs (default 2, what
Reef's bench node uses) and shut down at the end. Every workload mirrors one of
Reef's: the same shapes, counts and checks; the doc string of each says which.
"""

import argparse
import json
import os
import statistics
import sys
import threading
import time

# No usage report leaves the machine.
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

import numpy as np  # noqa: E402
import ray  # noqa: E402

MIB = 1 << 20
GIB = 1 << 30


@ray.remote
def noop(*_args):
    return None


@ray.remote
def partial_sum(xs, start, end):
    """The seed demo's task: sums xs[start:end] of a zero-copy numpy view."""
    return float(xs[start:end].sum())


@ray.remote
class Accumulator:
    def __init__(self, total=0.0):
        self.total_ = total

    def add(self, x):
        self.total_ += x
        return self.total_

    def total(self):
        return self.total_


@ray.remote(num_cpus=0)
class Reader:
    """One of the concurrent readers: maps the object (zero-copy), reads a byte per
    4 KiB page, keeps the view `hold_ms` and returns the sum of the bytes read."""

    def pid(self):
        return os.getpid()

    def hold(self, xs, hold_ms):
        view = xs.view(np.uint8)
        total = int(view[::4096].sum(dtype=np.uint64))
        time.sleep(hold_ms / 1000)
        del view
        return total


def timed(f):
    start = time.perf_counter()
    f()
    return time.perf_counter() - start


# ---- workloads (each returns a JSON-able dict) ----


def roundtrip(warmup=300, calls=1000):
    """Sync task round trip: `ray.get(noop.remote())`, one at a time (Reef:
    roundtrip::sync_task). Samples in seconds."""
    for _ in range(warmup):
        ray.get(noop.remote())
    return {"samples": [timed(lambda: ray.get(noop.remote())) for _ in range(calls)]}


def tasks(n=5_000, runs=3):
    """Async task throughput: n `noop` tasks submitted without waiting, then one
    `ray.get` of all (Reef: throughput::tasks). Seconds of each run after a warm-up run."""

    def run():
        refs = [noop.remote() for _ in range(n)]
        assert len(ray.get(refs)) == n

    run()
    return {"n": n, "seconds": [timed(run) for _ in range(runs)]}


def actor_roundtrip(warmup=300, calls=1000):
    """Sync actor call: `ray.get(acc.add.remote(1.0))`, one at a time. Samples in s."""
    acc = Accumulator.remote()
    for _ in range(warmup):
        ray.get(acc.add.remote(1.0))
    samples = [timed(lambda: ray.get(acc.add.remote(1.0))) for _ in range(calls)]
    assert ray.get(acc.total.remote()) == warmup + calls
    ray.kill(acc)
    return {"samples": samples}


def actor_calls(n=5_000, runs=3):
    """Async actor calls: n `add(1.0)` calls on one actor without waiting, then one
    `ray.get` of all; the last total checks the order (Reef: throughput::actor_calls)."""
    acc = Accumulator.remote()
    expected = [0.0]

    def run():
        expected[0] += n
        totals = ray.get([acc.add.remote(1.0) for _ in range(n)])
        assert totals[-1] == expected[0], "calls ran out of order"

    run()
    seconds = [timed(run) for _ in range(runs)]
    ray.kill(acc)
    return {"n": n, "seconds": seconds}


def actor_creations(n=10, runs=2):
    """Actor creations: n `Accumulator(i)` created at once (default options), timed
    until each one's first call (`total`) has answered; killed, untimed, between runs."""
    seconds = []
    for _ in range(runs):
        start = time.perf_counter()
        actors = [Accumulator.remote(float(i)) for i in range(n)]
        totals = ray.get([a.total.remote() for a in actors])
        seconds.append(time.perf_counter() - start)
        assert totals == [float(i) for i in range(n)]
        for a in actors:
            ray.kill(a)
    return {"n": n, "seconds": seconds}


def put(size=GIB, runs=5):
    """`ray.put` of a pre-touched numpy array of `size` bytes; the object is freed
    between runs (Reef: put::same_machine). Samples in seconds."""
    data = np.ones(size // 8, dtype=np.float64)
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        ref = ray.put(data)
        samples.append(time.perf_counter() - start)
        del ref
    return {"size": size, "samples": samples}


class SeedArray:
    """The seed demo's object: f64 0..n put once, kept between batches."""

    def __init__(self):
        self.n = 0
        self.ref = None
        self.local = None

    def get(self, n):
        if self.n != n:
            self.ref = None
            self.local = np.arange(n, dtype=np.float64)
            self.ref = ray.put(self.local)
            self.n = n
        return self.ref


ARRAYS = SeedArray()


def sum_parts(n, parts, warmup, runs, keep_local):
    """`parts` tasks each summing a contiguous slice of the stored 0..n array; the
    driver gets the partial sums and checks their total. Samples in seconds."""
    ref = ARRAYS.get(n)
    if not keep_local:
        ARRAYS.local = None
    bounds = [n * p // parts for p in range(parts + 1)]
    expected = n * (n - 1) // 2

    def run():
        sums = ray.get([partial_sum.remote(ref, bounds[p], bounds[p + 1]) for p in range(parts)])
        assert sum(sums) == expected, f"sum {sum(sums)} != {expected}"

    for _ in range(warmup):
        run()
    return {"samples": [timed(run) for _ in range(runs)]}


def seed_demo(n=8_000_000, parts=4, warmup=3, runs=20):
    """The seed demo: a 64 MiB f64 array 0..8_000_000 put once; 4 tasks each summing
    a quarter with numpy; `ray.get` of the 4 results (Reef: seed::demo)."""
    return sum_parts(n, parts, warmup, runs, keep_local=True)


def numpy_sum(n=8_000_000, warmup=3, runs=20):
    """numpy summing the seed demo's array in the driver, one thread: no Ray involved."""
    ARRAYS.get(n)
    xs = ARRAYS.local
    expected = n * (n - 1) // 2
    for _ in range(warmup):
        assert xs.sum() == expected
    return {"samples": [timed(lambda: xs.sum()) for _ in range(runs)]}


def map_reduce(n=GIB // 8, parts=64, warmup=1, runs=5):
    """Map/reduce over 1 GiB of f64 0..n put once: 64 tasks each summing 1/64 with numpy,
    the driver adds the 64 partial sums (Reef: seed::map_reduce)."""
    return sum_parts(n, parts, warmup, runs, keep_local=False)


def stored_sum(n=GIB // 8, warmup=1, runs=5):
    """numpy summing the stored 0..n array in the driver, one thread, read in place
    (`ray.get` of a numpy array maps the object store's copy): the map/reduce's floor."""
    xs = ray.get(ARRAYS.get(n))
    ARRAYS.local = None
    expected = n * (n - 1) // 2
    for _ in range(warmup):
        assert xs.sum() == expected
    return {"samples": [timed(lambda: xs.sum()) for _ in range(runs)]}


def drop_arrays():
    """Frees the stored seed / map-reduce array."""
    ARRAYS.__init__()
    return {}


def descendants(pid):
    """Every process under `pid` (Ray's GCS, raylet, workers, ...)."""
    children = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def private_kib(pid):
    """A process's private memory: anonymous pages plus page tables (as Reef's figure)."""
    fields = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                name, _, rest = line.partition(":")
                if name in ("RssAnon", "VmPTE"):
                    fields[name] = int(rest.split()[0])
    except OSError:
        return 0
    return fields.get("RssAnon", 0) + fields.get("VmPTE", 0)


def readers(readers=16, size=64 * MIB, hold_ms=300, runs=3):
    """Memory added by 16 concurrent readers of one 64 MiB object (Reef:
    memory::concurrent_readers): 16 `Reader` actors (0 CPUs each, so all run at once;
    created and warmed first, like Reef's pooled instances) each map the object, read a
    byte per page and hold the view `hold_ms`. A thread sums the private memory (RssAnon +
    VmPTE) of every process of the Ray instance (not the driver) about every millisecond;
    the figure is the peak minus the value just before (highest of `runs`)."""
    data = np.full(size, 0xA5, dtype=np.uint8)
    ref = ray.put(data)
    del data
    actors = [Reader.remote() for _ in range(readers)]
    ray.get([a.pid.remote() for a in actors])
    expected = (size // 4096) * 0xA5

    def run():
        sums = ray.get([a.hold.remote(ref, hold_ms) for a in actors])
        assert all(s == expected for s in sums), "a reader read wrong bytes"

    run()
    pids = descendants(os.getpid())
    peaks = []
    for _ in range(runs):
        time.sleep(0.1)
        baseline = sum(private_kib(p) for p in pids)
        peak = [baseline]
        stop = threading.Event()

        def sample():
            while not stop.is_set():
                peak[0] = max(peak[0], sum(private_kib(p) for p in pids))
                time.sleep(0.001)

        sampler = threading.Thread(target=sample)
        sampler.start()
        run()
        stop.set()
        sampler.join()
        peaks.append((peak[0] - baseline) / 1024)
    for a in actors:
        ray.kill(a)
    return {"mib": max(peaks), "runs_mib": peaks, "processes": len(pids)}


def dag(roots=100, fanout=99, runs=3):
    """A DAG of roots x (1 + fanout) trivial tasks: each root `noop` feeds `fanout`
    `noop`s taking its result as argument; all submitted, then one `ray.get` (Reef:
    the same shape on one node). Seconds of each run after a warm-up run."""

    def run():
        refs = []
        for _ in range(roots):
            root = noop.remote()
            refs.extend(noop.remote(root) for _ in range(fanout))
            refs.append(root)
        assert len(ray.get(refs)) == roots * (1 + fanout)

    run()
    return {"n": roots * (1 + fanout), "seconds": [timed(run) for _ in range(runs)]}


def info():
    return {"ray": ray.__version__, "numpy": np.__version__, "cpus": ray.cluster_resources()["CPU"]}


WORKLOADS = {
    f.__name__: f
    for f in [
        roundtrip,
        tasks,
        actor_roundtrip,
        actor_calls,
        actor_creations,
        put,
        seed_demo,
        numpy_sum,
        map_reduce,
        stored_sum,
        drop_arrays,
        readers,
        dag,
        info,
    ]
}


def median(xs):
    return statistics.median(xs)


def standalone(emit):
    """Every workload once, one JSON line per figure."""

    def figure(name, value, unit):
        emit({"figure": name, "value": value, "unit": unit})

    figure("sync task round trip (median)", median(roundtrip()["samples"]) * 1e6, "us")
    r = tasks()
    figure("async task throughput", r["n"] / median(r["seconds"]), "tasks/s")
    figure("sync actor call (median)", median(actor_roundtrip()["samples"]) * 1e6, "us")
    r = actor_calls()
    figure("async actor calls", r["n"] / median(r["seconds"]), "calls/s")
    r = actor_creations()
    figure("actor creations", r["n"] / median(r["seconds"]), "/s")
    for size, label in [(64 * MIB, "64 MiB"), (GIB, "1 GiB")]:
        r = put(size)
        figure(f"put of {label} (median)", size / 1e9 / median(r["samples"]), "GB/s")
    figure("seed demo (median)", median(seed_demo()["samples"]) * 1e3, "ms")
    figure("numpy sum of the seed array in the driver (median)", median(numpy_sum()["samples"]) * 1e3, "ms")
    drop_arrays()
    figure("map/reduce of 1 GiB over 64 tasks (median)", median(map_reduce()["samples"]) * 1e3, "ms")
    drop_arrays()
    figure("memory added by 16 concurrent readers of one 64 MiB object", readers()["mib"], "MiB")
    r = dag()
    figure("DAG of 10,000 trivial tasks", r["n"] / median(r["seconds"]), "tasks/s")


def serve(emit):
    """Answers requests from stdin until it closes or says {"cmd": "quit"}."""
    emit({"ready": True, **info()})
    for line in sys.stdin:
        if not line.strip():
            continue
        request = json.loads(line)
        cmd = request.pop("cmd")
        if cmd == "quit":
            break
        try:
            emit(WORKLOADS[cmd](**request))
        except Exception as e:  # reported to the caller, which stops
            emit({"error": f"{cmd}: {type(e).__name__}: {e}"})


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serve", action="store_true", help="answer requests from stdin")
    parser.add_argument("--cpus", type=int, default=2, help="CPUs of the local Ray node")
    parser.add_argument(
        "--object-store", type=int, default=3 * GIB, help="bytes of Ray's object store"
    )
    args = parser.parse_args()

    # JSON goes to the real stdout alone: anything else written there (Ray's own
    # messages) is sent to stderr.
    out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)

    def emit(record):
        out.write(json.dumps(record) + "\n")
        out.flush()

    ray.init(
        num_cpus=args.cpus,
        object_store_memory=args.object_store,
        include_dashboard=False,
        log_to_driver=False,
    )
    try:
        (serve if args.serve else standalone)(emit)
    finally:
        ray.shutdown()


if __name__ == "__main__":
    main()

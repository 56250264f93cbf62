"""Same-engine (wasmtime-py 50) comparison of the two JS routes: compile, instantiate, noop, a 1M-element f64 loop."""
import sys, time, statistics
import wasmtime
from wasmtime import component as C

def main(path):
    engine = wasmtime.Engine(wasmtime.Config())
    wasm = open(path, "rb").read()
    t = time.perf_counter(); comp = C.Component(engine, wasm); compile_s = time.perf_counter() - t
    linker = C.Linker(engine)
    linker.add_wasip2()
    with linker.root() as root:
        with root.add_instance("reef:runtime/host@0.2.0") as li:
            for name in ["log", "report-panic", "put", "object-size", "get", "map-view", "release-view", "submit", "actor-create", "actor-lookup", "actor-call"]:
                li.add_func(name, lambda store, *a: None)
    def fresh():
        store = wasmtime.Store(engine)
        store.set_wasi(wasmtime.WasiConfig())
        inst = linker.instantiate(store, comp)
        guest = inst.get_export_index(store, "reef:runtime/guest@0.2.0")
        return store, inst.get_func(store, inst.get_export_index(store, "run-task", guest))
    def timed(task, n):
        xs = []
        for _ in range(n):
            t = time.perf_counter(); store, run = fresh(); run(store, task, []); xs.append(time.perf_counter() - t)
        return statistics.median(xs) * 1e3
    starts = []
    for _ in range(50):
        t = time.perf_counter(); fresh(); starts.append(time.perf_counter() - t)
    print(f"{path}: {len(wasm)} bytes, compile {compile_s:.2f} s, instantiate {statistics.median(starts)*1e3:.2f} ms, "
          f"instantiate+noop {timed('noop', 50):.2f} ms, instantiate+1M-f64 fill+sum loop {timed('loop', 5):.0f} ms", flush=True)

for p in sys.argv[1:]:
    main(p)

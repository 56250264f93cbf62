#!/usr/bin/env python3
"""Adds `cabi_realloc_adapter` to a Go core module built with the Reef Go SDK.

    patch_adapter_realloc.py WASM_TOOLS IN.wasm OUT.wasm

The WASI preview-1 adapter allocates its stack and state before the Go runtime is up
(see adapter.go). This finds `adapterArena` (a static Go variable that starts with a
marker) in the module's data segments and appends a function that bump-allocates from
it, exported as `cabi_realloc_adapter`, which wit-component hands to the adapter.
"""
import re
import subprocess
import sys
import tempfile
import os

MARKER = b"reef-go-wasi-adapter-arena/v1:::"
ARENA_SIZE = 4 << 16


def unescape(s: str) -> bytes:
    """Decodes a WAT string literal body."""
    out = bytearray()
    i = 0
    raw = s.encode("utf-8")
    while i < len(raw):
        c = raw[i]
        if c == 0x5C:  # backslash
            n = raw[i + 1]
            simple = {ord("t"): 9, ord("n"): 10, ord("r"): 13, ord('"'): 34, ord("'"): 39, 0x5C: 0x5C}
            if n in simple:
                out.append(simple[n])
                i += 2
            elif raw[i + 1:i + 3] and all(chr(x) in "0123456789abcdefABCDEF" for x in raw[i + 1:i + 3]):
                out.append(int(raw[i + 1:i + 3], 16))
                i += 3
            else:
                raise ValueError("unsupported escape in data segment: %r" % raw[i:i + 4])
        else:
            out.append(c)
            i += 1
    return bytes(out)


def main() -> None:
    wasm_tools, src, dst = sys.argv[1:4]
    wat = subprocess.run([wasm_tools, "print", src], check=True, capture_output=True).stdout.decode("utf-8")
    if "cabi_realloc_adapter" in wat:
        sys.exit("patch_adapter_realloc: %s already has cabi_realloc_adapter" % src)
    base = None
    for m in re.finditer(r'^  \(data \(;\d+;\) \(i32\.const (\d+)\) "((?:[^"\\]|\\.)*)"\)$', wat, re.M):
        if "reef-go-wasi" not in m.group(2):
            continue
        data = unescape(m.group(2))
        at = data.find(MARKER)
        if at >= 0:
            if base is not None:
                sys.exit("patch_adapter_realloc: the adapter arena marker appears twice")
            base = int(m.group(1)) + at
    if base is None:
        sys.exit("patch_adapter_realloc: no adapter arena in %s (does it import reef.dev/guest?)" % src)
    end = base + ARENA_SIZE
    func = f"""
  (global $reef_adapter_next (mut i32) (i32.const {base}))
  (func $reef_cabi_realloc_adapter (param i32 i32 i32 i32) (result i32)
    (local i32)
    ;; Only fresh allocations (the adapter asks for its stack and its state).
    local.get 1
    if
      unreachable
    end
    global.get $reef_adapter_next
    local.get 2
    i32.add
    i32.const 1
    i32.sub
    i32.const 0
    local.get 2
    i32.sub
    i32.and
    local.tee 4
    local.get 3
    i32.add
    i32.const {end}
    i32.gt_u
    if
      unreachable
    end
    local.get 4
    local.get 3
    i32.add
    global.set $reef_adapter_next
    local.get 4)
  (export "cabi_realloc_adapter" (func $reef_cabi_realloc_adapter))
"""
    # Insert the new fields before the module's closing parenthesis.
    end_at = wat.rstrip().rfind(")")
    if not wat.startswith("(module"):
        sys.exit("patch_adapter_realloc: %s is not a core module" % src)
    patched = wat[:end_at] + func + wat[end_at:]
    with tempfile.NamedTemporaryFile("w", suffix=".wat", delete=False) as f:
        f.write(patched)
        tmp = f.name
    try:
        subprocess.run([wasm_tools, "parse", tmp, "-o", dst], check=True)
    finally:
        os.unlink(tmp)


if __name__ == "__main__":
    main()

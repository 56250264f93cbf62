#!/usr/bin/env python3
"""Finds import cycles between the modules of one Rust crate.

Usage: check-cycles.py SRC_DIR   (e.g. host/src)

Each source file is one module (`lib.rs`/`main.rs` the crate root, `a.rs` and
`a/mod.rs` the module `a`, `a/b.rs` the module `a::b`). Module A depends on
module B when A names a path into B: a `use` of `crate::…`, `super::…`,
`self::…` or a child module, or such a path written inline in code. Declaring a
child (`mod b;`) is not a dependency; re-exporting from it (`pub use b::X`) is.
Inline modules (`mod tests { … }`) belong to their file.

Prints every cycle (one per strongly connected component of the graph, with
all of its members) and exits 1 if there is any, else prints nothing and
exits 0. Only Python's standard library is used.
"""

from __future__ import annotations

import re
import sys
from collections import deque
from pathlib import Path

Module = tuple[str, ...]


def module_of(src: Path, file: Path) -> Module:
    parts = list(file.relative_to(src).with_suffix("").parts)
    if parts[-1] == "mod" or (len(parts) == 1 and parts[0] in ("lib", "main")):
        parts.pop()
    return tuple(parts)


def strip_comments_and_literals(text: str) -> str:
    """Blanks comments, string and char literals (keeping offsets and braces in code)."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif text.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if text.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif text.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif m := re.match(r'b?r(#*)"', text[i:]):
            end = text.find('"' + m.group(1), i + m.end())
            j = n if end < 0 else end + 1 + len(m.group(1))
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append(re.sub(r"[^\n]", " ", text[i : j + 1]))
            i = j + 1
        elif c == "'" and (m := re.match(r"'(\\.[^']*|[^'\\])'", text[i:])):
            # A char literal; a lifetime (`'a`) has no closing quote and stays.
            out.append(" " * m.end())
            i += m.end()
        else:
            out.append(c)
            i += 1
    return "".join(out)


def expand_use_tree(tree: str) -> list[list[str]]:
    """`a::{b, c::{d, e as f}, self}` → [[a,b], [a,c,d], [a,c,e], [a]]."""
    tree = re.sub(r"\s+as\s+\w+", "", tree)
    tree = re.sub(r"\s+", "", tree)

    def parse(s: str, prefix: list[str]) -> list[list[str]]:
        paths = []
        for part in split_top(s):
            if not part:
                continue
            brace = part.find("{")
            if brace >= 0:
                head = [p for p in part[:brace].split("::") if p]
                paths += parse(part[brace + 1 : part.rfind("}")], prefix + head)
            else:
                segs = [p for p in part.split("::") if p and p != "*"]
                if segs == ["self"]:
                    segs = []
                paths.append(prefix + segs)
        return paths

    return parse(tree, [])


def split_top(s: str) -> list[str]:
    parts, depth, cur = [], 0, []
    for c in s:
        if c == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
            continue
        depth += c == "{"
        depth -= c == "}"
        cur.append(c)
    parts.append("".join(cur))
    return parts


def inline_modules(code: str) -> list[tuple[int, int, str]]:
    """(start, end, name) of every `mod name { … }` block."""
    blocks = []
    for m in re.finditer(r"\bmod\s+(\w+)\s*\{", code):
        depth, j = 1, m.end()
        while j < len(code) and depth:
            depth += code[j] == "{"
            depth -= code[j] == "}"
            j += 1
        blocks.append((m.start(), j, m.group(1)))
    return blocks


class Crate:
    def __init__(self, src: Path):
        self.src = src
        self.files = {module_of(src, f): f for f in sorted(src.rglob("*.rs"))}
        self.modules = set(self.files)

    def children(self, module: Module) -> set[str]:
        return {m[-1] for m in self.modules if len(m) == len(module) + 1 and m[:-1] == module}

    def resolve(self, here: Module, path: list[str]) -> Module | None:
        """The file module a path (as written in module `here`) points into."""
        if not path:
            return None
        if path[0] == "crate":
            full, rest = (), path[1:]
        elif path[0] in ("self", "super"):
            full, rest = here, path
            while rest and rest[0] in ("self", "super"):
                if rest[0] == "super":
                    if not full:
                        return None
                    full = full[:-1]
                rest = rest[1:]
        else:
            full, rest = here, path
        target = full + tuple(rest)
        # The longest prefix that is a module file (`a::b::Item` → `a::b`).
        for k in range(len(target), len(full) - 1, -1):
            if target[:k] in self.modules:
                if path[0] not in ("crate", "self", "super") and k == len(full):
                    return None  # an item or external crate, not a child module
                return target[:k]
        return None

    def dependencies(self, module: Module) -> set[Module]:
        code = strip_comments_and_literals(self.files[module].read_text())
        code = re.sub(r"\bpub\s*\(\s*in\s+[^)]*\)", "pub", code)
        blocks = inline_modules(code)
        kids = self.children(module)
        deps = set()

        def scope(pos: int) -> Module:
            inner = [name for start, end, name in blocks if start < pos < end]
            return module + tuple(inner)

        def add(pos: int, path: list[str]):
            here = scope(pos)
            if path and path[0] not in ("crate", "self", "super"):
                # A relative path only names a module of this file's own children.
                if here != module or path[0] not in kids:
                    return
            target = self.resolve(here, path)
            if target is not None and target != module:
                deps.add(target)

        uses = list(re.finditer(r"\buse\s+([^;]+);", code))
        for m in uses:
            for path in expand_use_tree(m.group(1)):
                add(m.start(), path)
        rest = list(code)
        for m in uses:
            rest[m.start() : m.end()] = " " * (m.end() - m.start())
        rest = "".join(rest)
        path_re = r"(?<![\w:])(\w+(?:\s*::\s*\w+)+)"
        for m in re.finditer(path_re, rest):
            path = [p.strip() for p in m.group(1).split("::")]
            add(m.start(), path)
        return deps

    def graph(self) -> dict[Module, set[Module]]:
        return {m: self.dependencies(m) for m in sorted(self.modules)}


def strongly_connected(graph: dict[Module, set[Module]]) -> list[list[Module]]:
    """Tarjan's algorithm (iterative); components of two or more modules."""
    index, low, on_stack, stack, comps = {}, {}, set(), [], []
    counter = 0
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, it = work[-1]
            advanced = False
            for nxt in it:
                if nxt not in index:
                    index[nxt] = low[nxt] = counter
                    counter += 1
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph[nxt]))))
                    advanced = True
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                comp = []
                while True:
                    m = stack.pop()
                    on_stack.discard(m)
                    comp.append(m)
                    if m == node:
                        break
                if len(comp) > 1:
                    comps.append(sorted(comp))
    return comps


def shortest_cycle(graph: dict[Module, set[Module]], comp: list[Module]) -> list[Module]:
    """A shortest cycle through the component's first module (breadth-first)."""
    members, start = set(comp), comp[0]
    prev: dict[Module, Module] = {}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for nxt in sorted(graph[node] & members):
            if nxt == start:
                path = [node]
                while path[-1] != start:
                    path.append(prev[path[-1]])
                return list(reversed(path)) + [start]
            if nxt not in prev:
                prev[nxt] = node
                queue.append(nxt)
    return comp


def name(m: Module) -> str:
    return "crate::" + "::".join(m) if m else "crate"


def main(argv: list[str]) -> int:
    if len(argv) != 2 or not Path(argv[1]).is_dir():
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    graph = Crate(Path(argv[1])).graph()
    comps = strongly_connected(graph)
    for i, comp in enumerate(comps, 1):
        cycle = shortest_cycle(graph, comp)
        print(f"cycle {i} ({len(comp)} modules): {' -> '.join(name(m) for m in cycle)}")
        for m in comp:
            inside = sorted(graph[m] & set(comp))
            print(f"    {name(m)} uses {', '.join(name(d) for d in inside)}")
    if comps:
        print(f"{argv[1]}: {len(comps)} import cycle(s)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

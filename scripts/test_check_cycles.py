#!/usr/bin/env python3
"""Tests of check-cycles.py on small crates written to a temporary directory.
Run: python3 scripts/test_check_cycles.py"""

import importlib.util
import io
import tempfile
import unittest
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

spec = importlib.util.spec_from_file_location(
    "check_cycles", Path(__file__).with_name("check-cycles.py")
)
check_cycles = importlib.util.module_from_spec(spec)
spec.loader.exec_module(check_cycles)


def run(files: dict[str, str]) -> tuple[int, str]:
    """Writes `files` (path → text) as a crate's src/ and runs the check on it."""
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "src"
        for path, text in files.items():
            (src / path).parent.mkdir(parents=True, exist_ok=True)
            (src / path).write_text(text)
        out = io.StringIO()
        with redirect_stdout(out), redirect_stderr(io.StringIO()):
            code = check_cycles.main(["check-cycles.py", str(src)])
        return code, out.getvalue()


class CheckCycles(unittest.TestCase):
    def test_a_tree_without_cycles_passes(self):
        code, out = run(
            {
                "lib.rs": "pub mod a;\npub mod b;\npub mod c;\n",
                "a.rs": "use crate::b::Thing;\nuse crate::{c, b::other};\n",
                "b.rs": "use crate::c::Leaf;\npub struct Thing;\npub fn other() {}\n",
                "c.rs": "pub struct Leaf;\n",
            }
        )
        self.assertEqual((code, out), (0, ""))

    def test_a_cycle_through_use_is_found(self):
        code, out = run(
            {
                "lib.rs": "pub mod a;\npub mod b;\npub mod c;\n",
                "a.rs": "use crate::b::Thing;\n",
                "b.rs": "use crate::c::Leaf;\npub struct Thing;\n",
                "c.rs": "use super::a;\npub struct Leaf;\n",
            }
        )
        self.assertEqual(code, 1)
        self.assertIn("cycle 1 (3 modules): crate::a -> crate::b -> crate::c -> crate::a", out)

    def test_an_inline_path_is_a_dependency(self):
        code, out = run(
            {
                "lib.rs": "mod a;\nmod b;\n",
                "a.rs": "pub fn f() { crate::b::g(); }\n",
                "b.rs": "pub fn g() { let _ = crate :: a :: f; }\n",
            }
        )
        self.assertEqual(code, 1)
        self.assertIn("crate::a -> crate::b -> crate::a", out)

    def test_comments_strings_and_tests_are_not_dependencies(self):
        code, out = run(
            {
                "lib.rs": "mod a;\nmod b;\n",
                "a.rs": "use crate::b::g;\npub fn f() {}\n",
                "b.rs": (
                    "//! Called by `crate::a::f`.\n"
                    "/* crate::a::f /* nested */ */\n"
                    "pub fn g() -> &'static str { \"crate::a::f\" }\n"
                    "pub fn h() -> char { '{' }\n"
                    "#[cfg(test)]\nmod tests {\n    use super::*;\n}\n"
                ),
            }
        )
        self.assertEqual((code, out), (0, ""))

    def test_a_child_using_its_parent_is_no_cycle_until_the_parent_uses_it(self):
        child = "use super::Shared;\npub struct Item;\n"
        tree = {
            "lib.rs": "pub mod group;\n",
            "group/mod.rs": "pub mod child;\npub struct Shared;\n",
            "group/child.rs": child,
        }
        self.assertEqual(run(tree), (0, ""))
        tree["group/mod.rs"] = "pub mod child;\npub use child::Item;\npub struct Shared;\n"
        code, out = run(tree)
        self.assertEqual(code, 1)
        self.assertIn("crate::group -> crate::group::child -> crate::group", out)

    def test_super_inside_an_inline_module_is_resolved_from_it(self):
        # `super` in `a::inner` is `a` itself: no dependency on the crate root.
        code, out = run(
            {
                "lib.rs": "mod a;\nuse a::f;\n",
                "a.rs": "pub fn f() {}\nmod inner {\n    use super::f;\n}\n",
            }
        )
        self.assertEqual((code, out), (0, ""))


if __name__ == "__main__":
    unittest.main()

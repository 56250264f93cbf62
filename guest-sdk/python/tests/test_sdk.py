"""Unit tests of the SDK on the build machine (no wasm): MessagePack, argument
decoding and result encoding. Run: python3 -m unittest discover guest-sdk/python/tests"""

import enum
import json
import math
import os
import struct
import sys
import types
import unittest
from dataclasses import dataclass

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

import reef  # noqa: E402
from reef import msgpack  # noqa: E402


class MsgpackTest(unittest.TestCase):
    def roundtrip(self, v):
        self.assertEqual(msgpack.decode(msgpack.encode(v)), v)

    def test_shortest_forms(self):
        cases = [
            (None, b"\xc0"),
            (True, b"\xc3"),
            (False, b"\xc2"),
            (0, b"\x00"),
            (127, b"\x7f"),
            (128, b"\xcc\x80"),
            (256, b"\xcd\x01\x00"),
            (65536, b"\xce\x00\x01\x00\x00"),
            (2**32, b"\xcf\x00\x00\x00\x01\x00\x00\x00\x00"),
            (-1, b"\xff"),
            (-32, b"\xe0"),
            (-33, b"\xd0\xdf"),
            (-129, b"\xd1\xff\x7f"),
            (-(2**31), b"\xd2\x80\x00\x00\x00"),
            (-(2**63), b"\xd3\x80" + b"\x00" * 7),
            (1.5, b"\xcb" + struct.pack(">d", 1.5)),
            ("", b"\xa0"),
            ("abc", b"\xa3abc"),
            ("x" * 32, b"\xd9\x20" + b"x" * 32),
            (b"\x01", b"\xc4\x01\x01"),
            ([], b"\x90"),
            ([1, [2]], b"\x92\x01\x91\x02"),
            ({}, b"\x80"),
            ({"a": 1}, b"\x81\xa1a\x01"),
        ]
        for value, encoded in cases:
            self.assertEqual(msgpack.encode(value), encoded, value)
            self.assertEqual(msgpack.decode(encoded), value, encoded)

    def test_roundtrips(self):
        for v in [2**64 - 1, -(2**63), "é" * 70000, b"\x00" * 70000, list(range(70000)),
                  {str(i): i for i in range(20)}, {"nested": {"deep": [1.25, None, True]}}]:
            self.roundtrip(v)
        self.assertEqual(msgpack.decode(msgpack.encode((1, 2))), [1, 2])

    def test_floats(self):
        self.assertEqual(msgpack.decode(b"\xca" + struct.pack(">f", 0.5)), 0.5)
        self.assertTrue(math.isnan(msgpack.decode(msgpack.encode(float("nan")))))

    def test_errors(self):
        for bad in [b"", b"\xc1", b"\xcd\x01", b"\x92\x01", b"\xa3ab", b"\xd4\x01\x02", b"\x01\x02"]:
            with self.assertRaises(msgpack.MsgpackError, msg=bad):
                msgpack.decode(bad)
        with self.assertRaises(msgpack.MsgpackError):
            msgpack.encode(2**64)
        with self.assertRaises(msgpack.MsgpackError):
            msgpack.encode(object())
        deep = b"\x91" * 600 + b"\xc0"
        with self.assertRaises(msgpack.MsgpackError):
            msgpack.decode(deep)
        with self.assertRaises(msgpack.MsgpackError):
            msgpack.decode(b"\xa2\xff\xfe")

    def test_prefix(self):
        self.assertEqual(msgpack.decode_prefix(b"\x01\x02"), (1, 1))

    def test_array_keys(self):
        self.assertEqual(msgpack.decode(b"\x81\x92\x01\x02\xc0"), {(1, 2): None})


# A stand-in for the generated `wit_world.imports.types`.
@dataclass
class ObjectRef:
    id: int
    size: int


@dataclass
class Arg_Inline:
    value: bytes


@dataclass
class Arg_Object:
    value: ObjectRef


@dataclass
class Output_Bytes:
    value: bytes


@dataclass
class Output_Object:
    value: int


# What componentize-py generates for the WIT enum `code` and record `failure`.
Code = enum.Enum("Code", [(name, i) for i, name in enumerate(reef.CODES)])


@dataclass
class Failure:
    code: Code
    message: str


fake_types = types.SimpleNamespace(
    ObjectRef=ObjectRef, Arg_Inline=Arg_Inline, Arg_Object=Arg_Object,
    Output_Bytes=Output_Bytes, Output_Object=Output_Object, Code=Code, Failure=Failure,
)


def inline(v):
    return Arg_Inline(msgpack.encode(v))


class DispatchTest(unittest.TestCase):
    def setUp(self):
        self.saved = (reef._types, dict(reef._TASKS), dict(reef._ACTORS), reef._actor_state)
        reef._types = fake_types

    def tearDown(self):
        reef._types, tasks, actors, reef._actor_state = self.saved
        reef._TASKS.clear()
        reef._TASKS.update(tasks)
        reef._ACTORS.clear()
        reef._ACTORS.update(actors)

    def run_task(self, name, *args):
        return reef._run_task(name, list(args))

    def error(self, fn, *args):
        """The call's failure as "CODE: message"."""
        with self.assertRaises(reef._Err) as cm:
            reef._guarded(fn, *args)
        failure = cm.exception.value
        return "%s: %s" % (failure.code.name, failure.message)

    def test_typed_arguments(self):
        @reef.task
        def add(a: float, b: float = 1.0) -> float:
            return a + b

        self.assertEqual(self.run_task("add", inline(2), inline(0.5)), Output_Bytes(msgpack.encode(2.5)))
        self.assertEqual(self.run_task("add", inline(2)), Output_Bytes(msgpack.encode(3.0)))
        # nil for a parameter with a default: the default.
        self.assertEqual(self.run_task("add", inline(2), inline(None)), Output_Bytes(msgpack.encode(3.0)))
        e = self.error(reef._run_task, "add", [inline("x")])
        self.assertEqual(e, "BAD_ARGUMENT: argument 0 (a): expected a number, got str ('x')")
        e = self.error(reef._run_task, "add", [inline(True)])
        self.assertTrue(e.startswith("BAD_ARGUMENT: argument 0 (a): expected a number, got bool"), e)
        e = self.error(reef._run_task, "add", [])
        self.assertEqual(e, "BAD_ARGUMENT: expected 1 to 2 arguments (a, b), got 0")
        e = self.error(reef._run_task, "add", [inline(1)] * 3)
        self.assertTrue(e.startswith("BAD_ARGUMENT: expected 1 to 2 arguments"), e)
        e = self.error(reef._run_task, "add", [Arg_Inline(b"\xc1")])
        self.assertTrue(e.startswith("BAD_ARGUMENT: argument 0 (a): not MessagePack"), e)
        e = self.error(reef._run_task, "nope", [])
        self.assertTrue(e.startswith("UNKNOWN_FUNCTION: unknown task `nope`"), e)

    def test_modes(self):
        @reef.task
        def f(o: reef.ObjectRef, r: reef.Raw, anything, *rest: int):
            return [o.id, bytes(r), anything, list(rest)]

        out = self.run_task("f", Arg_Object(ObjectRef(7, 3)), Arg_Inline(b"\xc1raw"), inline({"k": [1]}), inline(4), inline(5))
        self.assertEqual(msgpack.decode(out.value), [7, b"\xc1raw", {"k": [1]}, [4, 5]])
        e = self.error(reef._run_task, "f", [inline(1), inline(1), inline(1)])
        self.assertEqual(e, "BAD_ARGUMENT: argument 0 (o): expected an object, got an inline value")
        e = self.error(reef._run_task, "f", [Arg_Object(ObjectRef(7, 3)), inline(1), inline(1), inline("s")])
        self.assertTrue(e.startswith("BAD_ARGUMENT: argument 3 (rest): expected an integer, got str"), e)

    def test_optional_object(self):
        @reef.task
        def h(o: "reef.ObjectRef | None" = None):
            return None if o is None else o.id

        self.assertEqual(self.run_task("h"), Output_Bytes(b"\xc0"))
        self.assertEqual(self.run_task("h", inline(None)), Output_Bytes(b"\xc0"))
        self.assertEqual(self.run_task("h", Arg_Object(ObjectRef(3, 1))), Output_Bytes(b"\x03"))

    def test_optional_and_generic_annotations(self):
        from typing import Optional

        @reef.task
        def g(a: Optional[int], b: "list[int]", c: dict):
            return [a, b, c]

        out = self.run_task("g", inline(None), inline([1]), inline({}))
        self.assertEqual(msgpack.decode(out.value), [None, [1], {}])
        e = self.error(reef._run_task, "g", [inline(1), inline({}), inline({})])
        self.assertTrue(e.startswith("BAD_ARGUMENT: argument 1 (b): expected an array, got dict"), e)

    def test_results(self):
        @reef.task
        def raw() -> bytes:
            return bytearray(b"\x00\x01")

        @reef.task
        def obj():
            return reef.ObjectRef(42, 8)

        @reef.task
        def packed():
            return reef.Output.value(b"\x00")

        @reef.task
        def bad():
            return object()

        self.assertEqual(self.run_task("raw"), Output_Bytes(b"\x00\x01"))
        self.assertEqual(self.run_task("obj"), Output_Object(42))
        self.assertEqual(self.run_task("packed"), Output_Bytes(b"\xc4\x01\x00"))
        e = self.error(reef._run_task, "bad", [])
        self.assertIn("cannot return the result: cannot encode a value of type object", e)

    def test_exceptions_carry_text_and_traceback(self):
        @reef.task
        def boom(msg: str):
            raise ValueError(msg)

        e = self.error(reef._run_task, "boom", [inline("it broke")])
        self.assertTrue(e.startswith("GUEST_ERROR: ValueError: it broke\n\nTraceback (most recent call last):"), e)
        self.assertIn("in boom", e)
        self.assertNotIn("in _guarded", e)
        self.assertNotIn("in _run_task", e)
        self.assertTrue(e.rstrip().endswith("ValueError: it broke"), e)

        @reef.task
        def user_error():
            raise reef.BadArgument("n must be positive")

        self.assertEqual(self.error(reef._run_task, "user_error", []), "BAD_ARGUMENT: n must be positive")

    def test_actor(self):
        @reef.actor
        class Acc:
            def __init__(self, initial: float = 0.0):
                self._total = initial

            def add(self, x: float) -> float:
                self._total += x
                return self._total

            def total(self) -> float:
                return self._total

            def _private(self):
                pass

            @staticmethod
            def helper():
                pass

        self.assertEqual(list(reef._ACTORS["Acc"].methods), ["add", "total"])
        reef._actor_state = None
        reef._actor_init("Acc", [inline(10)])
        self.assertEqual(reef._actor_call("add", [inline(5)]), Output_Bytes(msgpack.encode(15.0)))
        e = self.error(reef._actor_call, "_private", [])
        self.assertTrue(e.startswith("UNKNOWN_FUNCTION: actor class `Acc` has no method `_private`"), e)
        e = self.error(reef._actor_init, "Acc", [])
        self.assertEqual(e, "GUEST_ERROR: this instance already holds an actor\n\n" + e.split("\n\n", 1)[1])
        reef._actor_state = None
        e = self.error(reef._actor_init, "Nope", [])
        self.assertTrue(e.startswith("UNKNOWN_FUNCTION: unknown actor class `Nope`"), e)

    def test_host_error_codes(self):
        e = reef.HostError("object 0x5 was not given", "UNKNOWN_OBJECT")
        self.assertEqual((e.code, e.message), ("UNKNOWN_OBJECT", "object 0x5 was not given"))
        self.assertEqual(self.error(self.raiser(e)), "UNKNOWN_OBJECT: object 0x5 was not given")
        with self.assertRaises(reef.HostError):
            reef.put(b"x")  # no host outside a component
        with self.assertRaises(ValueError):
            reef.Error("x", code="NOT_A_CODE")
        self.assertEqual(self.error(self.raiser(reef.Error("x", code="NAME_TAKEN"))), "NAME_TAKEN: x")

    @staticmethod
    def raiser(e):
        def fn():
            raise e

        return fn


class GoldenTest(unittest.TestCase):
    def test_codes_match_the_golden_file(self):
        """CODES against tests/golden/abi-layouts.json (computed from wit/ by the host's tests)."""
        path = os.path.join(os.path.dirname(__file__), "..", "..", "..", "tests", "golden", "abi-layouts.json")
        with open(path) as f:
            golden = json.load(f)
        self.assertEqual(golden["package"], "reef:runtime@0.2.0")
        wit = sorted((v, k[len("case.code."):]) for k, v in golden.items() if k.startswith("case.code."))
        self.assertEqual([name.upper().replace("-", "_") for _, name in wit], list(reef.CODES))
        self.assertEqual([i for i, _ in wit], list(range(len(reef.CODES))))


class F64HelpersTest(unittest.TestCase):
    """ObjectRef.sum_f64 & co. pass the right ranges to the host functions (a
    fake host here; the host's own tests check the arithmetic)."""

    class FakeHost:
        def __init__(self, objects):
            self.objects = objects
            self.calls = []

        def object_size(self, id):
            return 8 * len(self.objects[id]) + (3 if id == 9 else 0)

        def f64_sum(self, id, start, end):
            self.calls.append(("sum", id, start, end))
            return float(sum(self.objects[id][start:end]))

        def f64_min(self, id, start, end):
            xs = self.objects[id][start:end]
            return min(xs) if xs else None

        def f64_max(self, id, start, end):
            xs = self.objects[id][start:end]
            return max(xs) if xs else None

        def f64_dot(self, a, a_start, b, b_start, n):
            self.calls.append(("dot", a, a_start, b, b_start, n))
            xs, ys = self.objects[a][a_start:a_start + n], self.objects[b][b_start:b_start + n]
            return float(sum(x * y for x, y in zip(xs, ys)))

    def setUp(self):
        self.saved = reef._host
        self.host = self.FakeHost({1: [1.0, 2.0, 3.0, 4.0], 2: [2.0, 2.0, 2.0], 9: []})
        reef._host = self.host

    def tearDown(self):
        reef._host = self.saved

    def test_ranges(self):
        xs = reef.ObjectRef(1)
        self.assertEqual(xs.f64_len(), 4)
        self.assertEqual(xs.sum_f64(), 10.0)
        self.assertEqual(xs.sum_f64(1, 3), 5.0)
        self.assertEqual(self.host.calls[-2:], [("sum", 1, 0, 4), ("sum", 1, 1, 3)])
        self.assertEqual((xs.min_f64(), xs.max_f64(2)), (1.0, 4.0))
        self.assertIsNone(xs.min_f64(2, 2))
        self.assertEqual(xs.dot_f64(reef.ObjectRef(2), 1), 18.0)
        self.assertEqual(self.host.calls[-1], ("dot", 1, 1, 2, 0, 3))
        with self.assertRaises(reef.BadArgument):
            xs.dot_f64(reef.ObjectRef(2), 3, 1)
        with self.assertRaises(reef.BadArgument):
            reef.ObjectRef(9).f64_len()  # 3 bytes: not whole f64s


if __name__ == "__main__":
    unittest.main()

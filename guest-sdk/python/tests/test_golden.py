"""The shared golden MessagePack vectors (tests/golden/msgpack.json at the
repository root): every vector's value encodes to its bytes (shortest forms),
its bytes decode to its value, and every invalid input is refused.

Python has no float32: such vectors are checked on decoding only.
Run: python3 -m unittest discover guest-sdk/python/tests"""

import json
import math
import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from reef import msgpack  # noqa: E402

GOLDEN = os.path.join(os.path.dirname(__file__), "..", "..", "..", "tests", "golden", "msgpack.json")


def load():
    with open(GOLDEN, encoding="utf-8") as f:
        return json.load(f)


def golden_bytes(parts):
    out = bytearray()
    for part in parts:
        byte, _, times = part.partition("*")
        out += bytes.fromhex(byte) * (int(times) if times else 1)
    return bytes(out)


def value(desc):
    """The Python value of a typed description, and whether Python can encode it as described."""
    (tag, v), *_ = desc.items()
    times = desc.get("repeat", 1)
    if tag == "nil":
        return None, True
    if tag == "bool":
        return v, True
    if tag == "int":
        return int(v), True
    if tag == "f64":
        return float(v), True
    if tag == "f32":
        return float(v), False
    if tag == "str":
        return v * times, True
    if tag == "bin":
        return bytes.fromhex(v) * times, True
    if tag == "array":
        items = [value(x) for x in v] * times
        return [x for x, _ in items], all(ok for _, ok in items)
    if tag == "map":
        pairs = [(value(k), value(x)) for k, x in v]
        return {k: x for (k, _), (x, _) in pairs}, all(a and b for (_, a), (_, b) in pairs)
    raise AssertionError(f"unknown value tag {tag}")


def same(a, b):
    """Equality that tells True from 1 and 1.0 from 1 (as MessagePack does)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    return a == b


class GoldenTest(unittest.TestCase):
    def test_vectors_encode_to_their_bytes(self):
        checked = 0
        for v in load()["vectors"]:
            val, expressible = value(v["value"])
            if v.get("encode", True) and expressible:
                with self.subTest(v["name"]):
                    self.assertEqual(msgpack.encode(val).hex(), golden_bytes(v["hex"]).hex())
                checked += 1
        self.assertGreater(checked, 50)

    def test_vectors_decode_to_their_values(self):
        for v in load()["vectors"]:
            with self.subTest(v["name"]):
                got = msgpack.decode(golden_bytes(v["hex"]))
                want, _ = value(v["value"])
                self.assertTrue(same(got, want), f"{got!r:.200} != {want!r:.200}")

    def test_invalid_inputs_are_refused(self):
        for v in load()["invalid"]:
            with self.subTest(v["name"]):
                with self.assertRaises(msgpack.MsgpackError):
                    msgpack.decode(golden_bytes(v["hex"]))


if __name__ == "__main__":
    unittest.main()

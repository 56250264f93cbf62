"""A small, dependency-free MessagePack codec (docs/encoding.md).

Encoding picks the shortest form for integers; Python ``float`` is always
float64 (the Reef convention for f64). Decoding accepts every standard form;
extension types are an error, and so is nesting deeper than 512 (as in the
Rust SDK).

Type mapping:

=================  ==========================================
MessagePack        Python
=================  ==========================================
nil                ``None``
bool               ``bool``
int (any width)    ``int``
float32/float64    ``float``
str                ``str``
bin                ``bytes``
array              ``list`` (``tuple`` also encodes as array)
map                ``dict``
=================  ==========================================
"""

import struct

__all__ = ["encode", "decode", "decode_prefix", "MsgpackError"]

MAX_DEPTH = 512

_pack_f64 = struct.Struct(">d").pack
_unpack_f64 = struct.Struct(">d").unpack_from
_unpack_f32 = struct.Struct(">f").unpack_from


class MsgpackError(ValueError):
    """Raised for input that is not valid MessagePack, or a value that cannot be encoded."""


def encode(value):
    """Encodes ``value`` as MessagePack ``bytes``."""
    out = bytearray()
    _encode(value, out, 0)
    return bytes(out)


def _encode_int(v, out):
    if v >= 0:
        if v < 0x80:
            out.append(v)
        elif v < 0x100:
            out += b"\xcc" + v.to_bytes(1, "big")
        elif v < 0x10000:
            out += b"\xcd" + v.to_bytes(2, "big")
        elif v < 0x100000000:
            out += b"\xce" + v.to_bytes(4, "big")
        elif v < 0x10000000000000000:
            out += b"\xcf" + v.to_bytes(8, "big")
        else:
            raise MsgpackError("integer %d does not fit in 64 bits" % v)
    else:
        if v >= -32:
            out.append(v & 0xFF)
        elif v >= -0x80:
            out += b"\xd0" + v.to_bytes(1, "big", signed=True)
        elif v >= -0x8000:
            out += b"\xd1" + v.to_bytes(2, "big", signed=True)
        elif v >= -0x80000000:
            out += b"\xd2" + v.to_bytes(4, "big", signed=True)
        elif v >= -0x8000000000000000:
            out += b"\xd3" + v.to_bytes(8, "big", signed=True)
        else:
            raise MsgpackError("integer %d does not fit in 64 bits" % v)


def _encode(v, out, depth):
    if depth > MAX_DEPTH:
        raise MsgpackError("value nested deeper than %d" % MAX_DEPTH)
    if v is None:
        out.append(0xC0)
    elif v is True:
        out.append(0xC3)
    elif v is False:
        out.append(0xC2)
    elif isinstance(v, int):
        _encode_int(int(v), out)
    elif isinstance(v, float):
        out.append(0xCB)
        out += _pack_f64(v)
    elif isinstance(v, str):
        b = v.encode("utf-8")
        n = len(b)
        if n < 32:
            out.append(0xA0 | n)
        elif n < 0x100:
            out += b"\xd9" + n.to_bytes(1, "big")
        elif n < 0x10000:
            out += b"\xda" + n.to_bytes(2, "big")
        else:
            out += b"\xdb" + _len32(n)
        out += b
    elif isinstance(v, (bytes, bytearray, memoryview)):
        b = v if not isinstance(v, memoryview) else v.cast("B")
        n = len(b)
        if n < 0x100:
            out += b"\xc4" + n.to_bytes(1, "big")
        elif n < 0x10000:
            out += b"\xc5" + n.to_bytes(2, "big")
        else:
            out += b"\xc6" + _len32(n)
        out += b
    elif isinstance(v, (list, tuple)):
        n = len(v)
        if n < 16:
            out.append(0x90 | n)
        elif n < 0x10000:
            out += b"\xdc" + n.to_bytes(2, "big")
        else:
            out += b"\xdd" + _len32(n)
        for item in v:
            _encode(item, out, depth + 1)
    elif isinstance(v, dict):
        n = len(v)
        if n < 16:
            out.append(0x80 | n)
        elif n < 0x10000:
            out += b"\xde" + n.to_bytes(2, "big")
        else:
            out += b"\xdf" + _len32(n)
        for key, item in v.items():
            _encode(key, out, depth + 1)
            _encode(item, out, depth + 1)
    else:
        raise MsgpackError(
            "cannot encode a value of type %s as MessagePack" % type(v).__name__
        )


def _len32(n):
    if n >= 0x100000000:
        raise MsgpackError("length %d does not fit in 32 bits" % n)
    return n.to_bytes(4, "big")


def decode(data):
    """Decodes one MessagePack value that must span all of ``data`` (bytes-like)."""
    value, used = decode_prefix(data)
    if used != len(data):
        raise MsgpackError(
            "%d trailing bytes after a MessagePack value of %d bytes"
            % (len(data) - used, used)
        )
    return value


def decode_prefix(data):
    """Decodes the first MessagePack value of ``data``; returns ``(value, bytes used)``."""
    if not isinstance(data, (bytes, bytearray)):
        data = bytes(data)
    return _Decoder(data).run()


class _Decoder:
    __slots__ = ("b", "pos")

    def __init__(self, b):
        self.b = b
        self.pos = 0

    def run(self):
        value = self.value(0)
        return value, self.pos

    def take(self, n):
        p = self.pos
        end = p + n
        if end > len(self.b):
            raise MsgpackError(
                "truncated MessagePack: needed %d bytes at offset %d, have %d"
                % (n, p, len(self.b) - p)
            )
        self.pos = end
        return self.b[p:end]

    def uint(self, n):
        return int.from_bytes(self.take(n), "big")

    def sint(self, n):
        return int.from_bytes(self.take(n), "big", signed=True)

    def str_(self, n):
        raw = self.take(n)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise MsgpackError("invalid UTF-8 in a MessagePack str: %s" % e) from None

    def value(self, depth):
        # Arrays and maps recurse straight into `value`: one Python frame per
        # level, so 512 levels stay under Python's default recursion limit.
        if depth > MAX_DEPTH:
            raise MsgpackError("MessagePack nested deeper than %d" % MAX_DEPTH)
        b = self.b
        p = self.pos
        if p >= len(b):
            raise MsgpackError("truncated MessagePack: no value at offset %d" % p)
        t = b[p]
        self.pos = p + 1
        if t < 0x80:
            return t
        if t >= 0xE0:
            return t - 0x100
        if 0xA0 <= t <= 0xBF:
            return self.str_(t & 0x1F)
        if 0x90 <= t <= 0x9F or t == 0xDC or t == 0xDD:
            n = t & 0x0F if t <= 0x9F else self.uint(2 if t == 0xDC else 4)
            out = []
            for _ in range(n):
                out.append(self.value(depth + 1))
            return out
        if 0x80 <= t <= 0x8F or t == 0xDE or t == 0xDF:
            n = t & 0x0F if t <= 0x8F else self.uint(2 if t == 0xDE else 4)
            out = {}
            for _ in range(n):
                key = self.value(depth + 1)
                if isinstance(key, (list, dict)):
                    key = _freeze(key)
                out[key] = self.value(depth + 1)
            return out
        if t == 0xC0:
            return None
        if t == 0xC2:
            return False
        if t == 0xC3:
            return True
        if t == 0xCB:
            return _unpack_f64(self.take(8))[0]
        if t == 0xCA:
            return _unpack_f32(self.take(4))[0]
        if t == 0xCC:
            return self.uint(1)
        if t == 0xCD:
            return self.uint(2)
        if t == 0xCE:
            return self.uint(4)
        if t == 0xCF:
            return self.uint(8)
        if t == 0xD0:
            return self.sint(1)
        if t == 0xD1:
            return self.sint(2)
        if t == 0xD2:
            return self.sint(4)
        if t == 0xD3:
            return self.sint(8)
        if t == 0xD9:
            return self.str_(self.uint(1))
        if t == 0xDA:
            return self.str_(self.uint(2))
        if t == 0xDB:
            return self.str_(self.uint(4))
        if t == 0xC4:
            return bytes(self.take(self.uint(1)))
        if t == 0xC5:
            return bytes(self.take(self.uint(2)))
        if t == 0xC6:
            return bytes(self.take(self.uint(4)))

        if t in (0xC7, 0xC8, 0xC9) or 0xD4 <= t <= 0xD8:
            raise MsgpackError(
                "MessagePack extension types are not supported (type byte %#04x at offset %d)"
                % (t, p)
            )
        raise MsgpackError("invalid MessagePack type byte 0xc1 at offset %d" % p)


def _freeze(v):
    """Makes an array or map usable as a dict key (tuples; maps as tuples of pairs)."""
    if isinstance(v, list):
        return tuple(_freeze(x) for x in v)
    if isinstance(v, dict):
        return tuple((k, _freeze(x)) for k, x in v.items())
    return v

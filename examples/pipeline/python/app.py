"""Python piece of the cross-language pipeline: `tokenize`.

tokenize(text) -> raw bytes: the ASCII-lowercased words of `text`, where a word
is a maximal run of [a-z] after lowercasing (everything else separates),
joined with b"\\n" and no trailing newline. The result is returned raw (not
MessagePack), so the C task `count_tokens` can read it through a view.

`text` may be a MessagePack str (inline, or an object such as the result of
another task) or raw UTF-8 bytes.
"""

import re

import reef

_WORD = re.compile(rb"[a-z]+")


def _text_bytes(arg):
    """The text of a `reef.Raw` argument, as UTF-8 bytes."""
    try:
        value = reef.msgpack.decode(arg)
    except reef.MsgpackError:
        return bytes(arg)
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, bytes):
        return value
    # Not a MessagePack str or bin (e.g. raw text that happens to start like a number).
    return bytes(arg)


def tokens(data):
    """The tokens of UTF-8 `data` (bytes), as a list of bytes."""
    # bytes.lower() lowercases ASCII letters only, as the format asks.
    return _WORD.findall(data.lower())


@reef.task
def tokenize(text: reef.Raw) -> bytes:
    return b"\n".join(tokens(_text_bytes(text)))

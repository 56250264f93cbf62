"""Reef guest SDK for Python (componentize-py).

Write tasks as functions and actors as classes::

    import reef

    @reef.task
    def add(a: float, b: float) -> float:
        return a + b

    @reef.actor
    class Counter:
        def __init__(self, start: int = 0):
            self.n = start

        def incr(self) -> int:
            self.n += 1
            return self.n

Arguments arrive decoded from MessagePack (object arguments as `ObjectRef`),
results are encoded to MessagePack, except bytes-like results, which are
returned raw (like the Rust SDK's ``Output::bytes``). See README.md.
"""

import array as _array
import inspect as _inspect
import logging as _logging
import sys as _sys
import traceback as _traceback
import typing as _typing

from . import msgpack
from .msgpack import MsgpackError

__all__ = [
    "task",
    "actor",
    "ObjectRef",
    "ActorHandle",
    "Raw",
    "Output",
    "Error",
    "CODES",
    "BadArgument",
    "HostError",
    "put",
    "put_value",
    "put_f64s",
    "get",
    "get_value",
    "object_size",
    "submit",
    "actor_create",
    "actor_lookup",
    "actor_call",
    "log",
    "trace",
    "debug",
    "info",
    "warn",
    "error",
    "LogHandler",
    "msgpack",
    "MsgpackError",
    "SDK",
]

#: The ``sdk`` string reported by ``describe``.
SDK = "reef-guest-python/0.1.0"

# --------------------------------------------------------------------------
# The host imports. They exist only inside the component (componentize-py
# generates `wit_world` at build time); elsewhere (unit tests on the build
# machine) calling them raises `HostError`.
# --------------------------------------------------------------------------

try:  # pragma: no cover - exercised inside the component
    from wit_world.imports import host as _host
    from wit_world.imports import types as _types
    from componentize_py_types import Err as _Err
except ImportError:  # not inside a component
    _host = None
    _types = None

    class _Err(Exception):
        def __init__(self, value):
            super().__init__(value)
            self.value = value


# --------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------


#: The error codes (the WIT enum ``code`` of reef:runtime, which is the driver
#: API's ErrorCode), in the order of their canonical-ABI discriminant.
CODES = (
    "INVALID_MODULE",
    "UNKNOWN_MODULE",
    "UNKNOWN_FUNCTION",
    "BAD_ARGUMENT",
    "UNKNOWN_OBJECT",
    "GUEST_TRAP",
    "GUEST_PANIC",
    "GUEST_ERROR",
    "MEMORY_LIMIT",
    "CPU_TIME_LIMIT",
    "STACK_OVERFLOW",
    "CANCELLED",
    "TIMEOUT",
    "STORE_FULL",
    "INFEASIBLE",
    "DEPENDENCY_FAILED",
    "UNKNOWN_ACTOR",
    "ACTOR_DEAD",
    "NAME_TAKEN",
    "NODE_STOPPING",
    "OWNER_DIED",
    "VIEW_ERROR",
    "INTERNAL",
    "UNAUTHENTICATED",
    "NODE_DIED",
    "UNKNOWN_NODE",
    "UNKNOWN_PLACEMENT_GROUP",
    "OBJECT_LOST",
    "NOT_GRANTED",
    "PLACEMENT_GROUP_REMOVED",
)


class Error(Exception):
    """A Reef error: ``code`` (one of `CODES`, e.g. ``"BAD_ARGUMENT"``) and a
    message, which the driver gets as they are. Without a code it is the
    guest's own error (``GUEST_ERROR``)::

        raise reef.Error("n must be positive", code="BAD_ARGUMENT")
    """

    code = None

    def __init__(self, message, code=None):
        super().__init__(message)
        self.message = message
        if code is not None:
            if code not in CODES:
                raise ValueError("unknown error code %r (see reef.CODES)" % (code,))
            self.code = code

    def __str__(self):
        return self.message


class BadArgument(Error):
    """Raise it for invalid arguments: the driver gets ``BAD_ARGUMENT``."""

    code = "BAD_ARGUMENT"


class UnknownFunction(Error):
    """An unknown task, actor class or method: the driver gets ``UNKNOWN_FUNCTION``."""

    code = "UNKNOWN_FUNCTION"


class HostError(Error):
    """A host function (put, get, submit, ...) failed with the host's ``code``
    (``UNKNOWN_OBJECT``, ``NAME_TAKEN``, ...). Raised on from a task, it reaches
    the driver with that code."""


def _call_host(name, *args):
    if _host is None:
        raise HostError("reef host functions are only available inside a Reef module", "INTERNAL")
    try:
        return getattr(_host, name)(*args)
    except _Err as e:
        # e.value is the WIT `failure` record; its code is an enum named like CODES.
        raise HostError(e.value.message, e.value.code.name) from None


# --------------------------------------------------------------------------
# Values crossing the boundary
# --------------------------------------------------------------------------


class Raw(bytes):
    """Raw bytes, never MessagePack.

    As a parameter annotation (``def echo(data: reef.Raw)``) the argument's bytes
    arrive as they were sent (an object argument is copied in with ``get``).
    As an outgoing argument (``reef.submit(f, reef.Raw(b"..."))``) the bytes are
    sent inline as they are.
    """

    __slots__ = ()


class ObjectRef:
    """An object in the node's store: an object argument, a ``put`` result, or the
    (possibly pending) result of ``submit``/``actor_call``.

    Reading it waits until it exists. Every read copies (see README.md, "What is copied").
    """

    __slots__ = ("id", "_size")

    def __init__(self, id, size=None):
        self.id = int(id)
        self._size = size

    @property
    def size(self):
        """The object's size in bytes (waits for a pending result)."""
        if self._size is None:
            self._size = _call_host("object_size", self.id)
        return self._size

    def __len__(self):
        return self.size

    def bytes(self):
        """The object's bytes (host ``get``: a copy)."""
        data = _call_host("get", self.id)
        self._size = len(data)
        return data

    def view(self, fmt="B"):
        """A read-only ``memoryview`` of the object's bytes, cast to ``fmt``
        (``"d"`` for little-endian f64s, ``"q"``, ``"i"``, ``"f"``...).

        componentize-py lowers every ``list<u8>`` by copying, so the host's
        zero-copy ``map-view`` cannot be used from Python: this is ``memoryview(self.bytes())``.
        For sums, minima, maxima and dot products of f64s use ``sum_f64`` & co.,
        which copy nothing.
        """
        mv = memoryview(self.bytes())
        if fmt == "B":
            return mv
        if len(mv) % _array.array(fmt).itemsize:
            raise BadArgument(
                "object %#x has %d bytes, not a whole number of %r items"
                % (self.id, len(mv), fmt)
            )
        return mv.cast(fmt)

    # Reductions over the object read as little-endian f64s, elements
    # [start, end) (end None: to the last one). The node computes them over the
    # stored bytes in place, at memory speed: nothing is copied into the guest,
    # unlike ``view("d")``. BAD_ARGUMENT if the size is not a multiple of 8 or
    # the range is outside the object.

    def f64_len(self):
        """The number of f64s in the object (BAD_ARGUMENT if its size is not a multiple of 8)."""
        size = self.size
        if size % 8:
            raise BadArgument("object %#x has %d bytes, not a whole number of f64s" % (self.id, size))
        return size // 8

    def _range(self, start, end):
        return int(start), self.f64_len() if end is None else int(end)

    def sum_f64(self, start=0, end=None):
        """The sum of the f64s (0.0 for an empty range), with the partial sums of the
        Rust and C SDKs' ``f64s`` helpers: it may differ from a sequential sum in the last bits."""
        return _call_host("f64_sum", self.id, *self._range(start, end))

    def min_f64(self, start=0, end=None):
        """The smallest f64 (None for an empty range, NaN if any is NaN)."""
        return _call_host("f64_min", self.id, *self._range(start, end))

    def max_f64(self, start=0, end=None):
        """The largest f64 (None for an empty range, NaN if any is NaN)."""
        return _call_host("f64_max", self.id, *self._range(start, end))

    def dot_f64(self, other, start=0, end=None, other_start=0):
        """The dot product of this object's f64s [start, end) and ``other``'s (an
        `ObjectRef`) from ``other_start`` on, as many."""
        start, end = self._range(start, end)
        if end < start:
            raise BadArgument("range %d..%d is reversed" % (start, end))
        return _call_host("f64_dot", self.id, start, other.id, int(other_start), end - start)

    def value(self):
        """The object decoded from MessagePack."""
        data = self.bytes()
        try:
            return msgpack.decode(data)
        except MsgpackError as e:
            raise HostError("object %#x is not MessagePack: %s" % (self.id, e)) from None

    get = value

    def __eq__(self, other):
        return isinstance(other, ObjectRef) and other.id == self.id

    def __hash__(self):
        return hash(self.id)

    def __repr__(self):
        if self._size is None:
            return "ObjectRef(%#x)" % self.id
        return "ObjectRef(%#x, size=%d)" % (self.id, self._size)


class Output:
    """An explicit result: ``Output.raw(b)``, ``Output.value(v)``, ``Output.object(ref)``.

    Tasks may also return plain values: bytes-like -> raw, ``ObjectRef`` -> object,
    anything else -> MessagePack. ``Output.value(b"...")`` sends bytes as MessagePack bin.
    """

    __slots__ = ("kind", "data")

    def __init__(self, kind, data):
        self.kind = kind
        self.data = data

    @staticmethod
    def raw(data):
        return Output("bytes", bytes(data))

    @staticmethod
    def value(value):
        return Output("bytes", msgpack.encode(value))

    @staticmethod
    def object(ref):
        return Output("object", ref.id if isinstance(ref, ObjectRef) else int(ref))


def _to_output(result):
    if isinstance(result, Output):
        out = result
    elif isinstance(result, ObjectRef):
        out = Output("object", result.id)
    elif isinstance(result, (bytes, bytearray, memoryview)):
        out = Output("bytes", bytes(result))
    else:
        try:
            out = Output("bytes", msgpack.encode(result))
        except MsgpackError as e:
            raise Error("cannot return the result: %s" % e) from None
    if out.kind == "object":
        return _types.Output_Object(out.data)
    return _types.Output_Bytes(out.data)


def _to_arg(value):
    """An outgoing argument: ObjectRef -> object, Raw -> raw inline, else MessagePack inline."""
    if isinstance(value, ObjectRef):
        # The host identifies objects by id; the size of a pending result is not known yet.
        return _types.Arg_Object(_types.ObjectRef(value.id, value._size or 0))
    if isinstance(value, Raw):
        return _types.Arg_Inline(bytes(value))
    return _types.Arg_Inline(msgpack.encode(value))


# --------------------------------------------------------------------------
# Host functions
# --------------------------------------------------------------------------


def put(data):
    """Stores bytes-like ``data`` as a new immutable object; returns its `ObjectRef`."""
    r = _call_host("put", bytes(data))
    return ObjectRef(r.id, r.size)


def put_value(value):
    """Stores ``value`` MessagePack-encoded."""
    return put(msgpack.encode(value))


def put_f64s(xs):
    """Stores numbers as little-endian f64s (readable with ``view("d")``, or a Rust ``as_f64s``)."""
    a = xs if isinstance(xs, _array.array) and xs.typecode == "d" else _array.array("d", xs)
    if _sys.byteorder != "little":  # pragma: no cover - wasm is little-endian
        a = _array.array("d", a)
        a.byteswap()
    return put(a.tobytes())


def get(ref):
    """The bytes of an object (`ObjectRef` or id), waiting for it if pending."""
    return ObjectRef(ref.id if isinstance(ref, ObjectRef) else ref).bytes()


def get_value(ref):
    """An object decoded from MessagePack, waiting for it if pending."""
    return ObjectRef(ref.id if isinstance(ref, ObjectRef) else ref).value()


def object_size(ref):
    """Size of an object, waiting for it if pending."""
    return _call_host("object_size", ref.id if isinstance(ref, ObjectRef) else int(ref))


def _fn_name(function):
    if isinstance(function, str):
        return function
    name = getattr(function, "__reef_name__", None) or getattr(function, "__name__", None)
    if not name:
        raise TypeError("expected a task name or a @reef.task function, got %r" % (function,))
    return name


def submit(function, *args, module=""):
    """Submits a task (a name or a ``@reef.task`` function) of ``module`` (a module
    hash; ``""`` = this module). Returns the pending result as an `ObjectRef`."""
    wargs = [_to_arg(a) for a in args]
    return ObjectRef(_call_host("submit", module, _fn_name(function), wargs))


class ActorHandle:
    """An actor created or looked up from inside a task: ``h.call("m", x)`` or ``h.m(x)``
    return the pending result as an `ObjectRef`."""

    __slots__ = ("id",)

    def __init__(self, id):
        self.id = int(id)

    def call(self, method, *args):
        return actor_call(self, method, *args)

    def __getattr__(self, method):
        if method.startswith("_"):
            raise AttributeError(method)
        return lambda *args: actor_call(self, method, *args)

    def __repr__(self):
        return "ActorHandle(%#x)" % self.id


def actor_create(cls, *args, name=None, module=""):
    """Creates an actor of class ``cls`` (a name or an ``@reef.actor`` class) of ``module``."""
    wargs = [_to_arg(a) for a in args]
    return ActorHandle(_call_host("actor_create", module, _fn_name(cls), wargs, name))


def actor_lookup(name):
    """Finds a named actor."""
    return ActorHandle(_call_host("actor_lookup", name))


def actor_call(actor, method, *args):
    """Calls ``method`` of an actor (`ActorHandle` or id); returns the pending result."""
    aid = actor.id if isinstance(actor, ActorHandle) else int(actor)
    wargs = [_to_arg(a) for a in args]
    return ObjectRef(_call_host("actor_call", aid, method, wargs))


# --------------------------------------------------------------------------
# Logging
# --------------------------------------------------------------------------

_LEVELS = {"trace": 0, "debug": 1, "info": 2, "warn": 3, "warning": 3, "error": 4}


def log(level, message):
    """Writes a line to the task's log; ``level`` is trace/debug/info/warn/error."""
    n = _LEVELS.get(str(level).lower())
    if n is None:
        raise ValueError("unknown log level %r" % (level,))
    _call_host("log", _types.LogLevel(n), str(message))


def trace(message):
    log("trace", message)


def debug(message):
    log("debug", message)


def info(message):
    log("info", message)


def warn(message):
    log("warn", message)


def error(message):
    log("error", message)


class LogHandler(_logging.Handler):
    """A `logging` handler writing records to the task's log. The SDK installs one on
    the root logger (level INFO), so ``logging.info(...)`` reaches ``logs``."""

    def emit(self, record):
        try:
            msg = self.format(record)
            if record.levelno >= _logging.ERROR:
                level = 4
            elif record.levelno >= _logging.WARNING:
                level = 3
            elif record.levelno >= _logging.INFO:
                level = 2
            elif record.levelno >= _logging.DEBUG:
                level = 1
            else:
                level = 0
            if _host is not None:
                _host.log(_types.LogLevel(level), msg)
        except Exception:  # never let logging fail a task
            pass


class _LogStream:
    """``sys.stdout``/``sys.stderr``: complete lines go to the task's log."""

    def __init__(self, level):
        self.level = level
        self.buf = ""

    def write(self, s):
        if not isinstance(s, str):
            raise TypeError("write() argument must be str, not %s" % type(s).__name__)
        self.buf += s
        if "\n" in self.buf:
            *lines, self.buf = self.buf.split("\n")
            for line in lines:
                self._emit(line)
        return len(s)

    def _emit(self, line):
        if _host is not None:
            try:
                _host.log(_types.LogLevel(self.level), line)
            except Exception:
                pass

    def flush(self):
        if self.buf:
            line, self.buf = self.buf, ""
            self._emit(line)

    def isatty(self):
        return False

    def writable(self):
        return True


if _host is not None:
    _root = _logging.getLogger()
    _root.addHandler(LogHandler())
    _root.setLevel(_logging.INFO)


def _print_to_log():
    """Sends ``sys.stdout`` (level info) and ``sys.stderr`` (error) to the task log.
    The entry module calls it for --stub-wasi builds, where WASI stdout/stderr trap."""
    _sys.stdout = _LogStream(2)
    _sys.stderr = _LogStream(4)


# --------------------------------------------------------------------------
# Exporting tasks and actors
# --------------------------------------------------------------------------

_TASKS = {}
_ACTORS = {}

_EMPTY = _inspect.Parameter.empty


def _type_name(v):
    return type(v).__name__


def _show(v):
    s = repr(v)
    return s if len(s) <= 40 else s[:37] + "..."


class _Param:
    """How one parameter is decoded: its name, expected type and default."""

    __slots__ = ("name", "kind", "types", "optional", "default", "mode")

    def __init__(self, name, annotation, default):
        self.name = name
        self.default = default
        self.optional = False
        self.types = None  # tuple of accepted Python types, or None for any
        self.mode = "value"  # "value", "object" (ObjectRef), "raw" (Raw bytes), "any"
        ann = annotation
        origin = _typing.get_origin(ann)
        if origin is _typing.Union or (origin is not None and _is_union_type(origin)):
            members = [a for a in _typing.get_args(ann) if a is not type(None)]
            self.optional = len(members) < len(_typing.get_args(ann))
            ann = members[0] if len(members) == 1 else _typing.Any
            origin = _typing.get_origin(ann)
        if ann is _EMPTY or ann is _typing.Any or ann is object:
            self.mode = "any"
        elif ann is ObjectRef:
            self.mode = "object"
        elif ann is Raw:
            self.mode = "raw"
        else:
            base = origin if origin is not None else ann
            if base is float:
                self.types = (int, float)
            elif base in (list, tuple, _typing.List, _typing.Tuple):
                self.types = (list,)
            elif base in (dict, _typing.Dict):
                self.types = (dict,)
            elif isinstance(base, type):
                self.types = (base,)
            else:
                self.mode = "any"

    def expected(self):
        if self.mode == "object":
            return "an object"
        if self.types is None:
            return "a value"
        t = self.types[-1]
        return {
            float: "a number",
            int: "an integer",
            str: "a string",
            bool: "a bool",
            bytes: "bytes (MessagePack bin)",
            list: "an array",
            dict: "a map",
        }.get(t, t.__name__)

    def decode(self, index, arg):
        where = "argument %d (%s)" % (index, self.name)
        if isinstance(arg, _types.Arg_Object):
            ref = ObjectRef(arg.value.id, arg.value.size)
            if self.mode in ("object", "any"):
                return ref
            if self.mode == "raw":
                return Raw(ref.bytes())
            data = ref.bytes()
        else:
            data = arg.value
            if self.mode == "object":
                if data == b"\xc0" and (self.optional or self.default is not _EMPTY):
                    return None if self.default is _EMPTY else self.default
                raise BadArgument("%s: expected an object, got an inline value" % where)
            if self.mode == "raw":
                return Raw(data)
        try:
            value = msgpack.decode(data)
        except MsgpackError as e:
            raise BadArgument("%s: not MessagePack: %s" % (where, e)) from None
        if value is None and self.default is not _EMPTY:
            return self.default
        return self.check(where, value)

    def check(self, where, value):
        if self.types is None or (value is None and self.optional):
            return value
        if isinstance(value, bool) and bool not in self.types:
            ok = False
        else:
            ok = isinstance(value, self.types)
        if not ok:
            raise BadArgument(
                "%s: expected %s, got %s (%s)"
                % (where, self.expected(), _type_name(value), _show(value))
            )
        if self.types == (int, float):
            return float(value)
        return value


def _is_union_type(origin):
    try:
        import types as _t

        return origin is _t.UnionType
    except AttributeError:  # pragma: no cover
        return False


class _Signature:
    """Decodes a call's `list<arg>` into Python arguments for one function."""

    def __init__(self, fn, skip_self=False):
        sig = _inspect.signature(fn)
        try:
            hints = _typing.get_type_hints(fn)
        except Exception:
            hints = {}
        params = list(sig.parameters.values())
        if skip_self:
            params = params[1:]
        self.params = []
        self.rest = None
        for p in params:
            ann = hints.get(p.name, p.annotation)
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
                self.params.append(_Param(p.name, ann, p.default))
            elif p.kind == p.VAR_POSITIONAL:
                self.rest = _Param(p.name, ann, _EMPTY)
            elif p.kind == p.KEYWORD_ONLY and p.default is _EMPTY:
                raise TypeError(
                    "%s: keyword-only parameter %r needs a default (Reef passes arguments by position)"
                    % (fn.__qualname__, p.name)
                )
        self.required = sum(1 for p in self.params if p.default is _EMPTY)

    def decode(self, args):
        n = len(args)
        if n < self.required or (self.rest is None and n > len(self.params)):
            if self.rest is not None:
                want = "at least %d" % self.required
            elif self.required == len(self.params):
                want = "%d" % self.required
            else:
                want = "%d to %d" % (self.required, len(self.params))
            raise BadArgument(
                "expected %s argument%s (%s), got %d"
                % (
                    want,
                    "" if want == "1" else "s",
                    ", ".join(p.name for p in self.params),
                    n,
                )
            )
        out = []
        for i, arg in enumerate(args):
            p = self.params[i] if i < len(self.params) else self.rest
            out.append(p.decode(i, arg))
        return out


class _Task:
    def __init__(self, fn, name):
        self.fn = fn
        self.name = name
        self.sig = _Signature(fn)


class _ActorClass:
    def __init__(self, cls, name):
        self.cls = cls
        self.name = name
        init = cls.__dict__.get("__init__")
        self.init_sig = _Signature(cls.__init__, skip_self=True) if init or cls.__init__ is not object.__init__ else None
        self.methods = {}
        for attr in dir(cls):
            if attr.startswith("_"):
                continue
            raw = _inspect.getattr_static(cls, attr)
            if isinstance(raw, (staticmethod, classmethod, property)):
                continue
            member = getattr(cls, attr)
            if _inspect.isfunction(member):
                self.methods[attr] = _Signature(member, skip_self=True)


def task(fn=None, *, name=None):
    """Exports a function as a task (under its name, or ``name``).

    Parameters are decoded by annotation: ``float``/``int``/``str``/``bool``/``bytes``/
    ``list``/``dict`` (checked; an int is accepted for ``float``), `ObjectRef` (an object
    argument, not read), `Raw` (the argument's raw bytes), unannotated/``Any``
    (decoded MessagePack, or an `ObjectRef` for an object argument).
    """

    def register(f):
        task_name = name or f.__name__
        if task_name in _TASKS:
            raise ValueError("task %r is exported twice" % task_name)
        _TASKS[task_name] = _Task(f, task_name)
        f.__reef_name__ = task_name
        return f

    return register(fn) if fn is not None else register


def actor(cls=None, *, name=None):
    """Exports a class as an actor class. ``__init__`` receives the creation arguments;
    every public method (name not starting with ``_``) can be called."""

    def register(c):
        class_name = name or c.__name__
        if class_name in _ACTORS:
            raise ValueError("actor class %r is exported twice" % class_name)
        _ACTORS[class_name] = _ActorClass(c, class_name)
        c.__reef_name__ = class_name
        return c

    return register(cls) if cls is not None else register


# --------------------------------------------------------------------------
# The `guest` export (used by reef._guest)
# --------------------------------------------------------------------------

_actor_state = None  # (class, instance) after actor-init


def _failure(e):
    """The (code, message) of the call's `failure`: a Reef error's own, else
    GUEST_ERROR with the exception text and its traceback."""
    if isinstance(e, Error) and e.code:
        return e.code, e.message
    return "GUEST_ERROR", _error_text(e)


def _error_text(e):
    if isinstance(e, Error) and not isinstance(e, HostError):
        head = str(e)
    else:
        head = "".join(_traceback.format_exception_only(type(e), e)).strip()
    # Start at the first frame outside the SDK (its dispatch frames say nothing).
    tb = e.__traceback__
    first = tb
    while first is not None and _is_sdk_frame(first):
        first = first.tb_next
    if first is not None:
        tb = first
    text = "".join(_traceback.format_exception(type(e), e, tb)).rstrip()
    return "%s\n\n%s" % (head, text)


_SDK_DIR = __file__.rsplit("/", 1)[0] + "/"


def _is_sdk_frame(tb):
    return tb.tb_frame.f_code.co_filename.startswith(_SDK_DIR)


def _finish_call():
    for s in (_sys.stdout, _sys.stderr):
        try:
            s.flush()
        except Exception:
            pass


def _run_task(name, args):
    t = _TASKS.get(name)
    if t is None:
        raise UnknownFunction(
            "unknown task `%s` (this module has: %s)" % (name, ", ".join(_TASKS))
        )
    return _to_output(t.fn(*t.sig.decode(args)))


def _actor_init(class_name, args):
    global _actor_state
    if _actor_state is not None:
        raise Error("this instance already holds an actor")
    c = _ACTORS.get(class_name)
    if c is None:
        raise UnknownFunction(
            "unknown actor class `%s` (this module has: %s)" % (class_name, ", ".join(_ACTORS))
        )
    values = c.init_sig.decode(args) if c.init_sig else (_no_args(args) or [])
    _actor_state = (c, c.cls(*values))


def _no_args(args):
    if args:
        raise BadArgument("expected 0 arguments, got %d" % len(args))
    return []


def _actor_call(method, args):
    if _actor_state is None:
        raise Error("actor-call before actor-init")
    c, instance = _actor_state
    sig = c.methods.get(method)
    if sig is None:
        raise UnknownFunction(
            "actor class `%s` has no method `%s` (it has: %s)"
            % (c.name, method, ", ".join(c.methods))
        )
    return _to_output(getattr(instance, method)(*sig.decode(args)))


def _describe():
    return _types.ModuleInfo(
        SDK,
        list(_TASKS),
        [_types.ActorClass(c.name, list(c.methods)) for c in _ACTORS.values()],
    )


def _guarded(fn, *args):
    """Runs an export; every exception becomes the call's `failure`."""
    try:
        return fn(*args)
    except BaseException as e:  # noqa: B902 - exceptions must never trap the instance
        try:
            code, message = _failure(e)
        except BaseException:
            code, message = "GUEST_ERROR", "%s (and formatting its traceback failed)" % type(e).__name__
        raise _Err(_types.Failure(_types.Code[code], message)) from None
    finally:
        _finish_call()

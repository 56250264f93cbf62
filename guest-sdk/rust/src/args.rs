//! The arguments a task or actor method receives, with typed accessors.

use crate::error::{Code, Error, Result};
use crate::host;
use crate::msgpack::{self, Value};
use crate::types::{Arg, ObjectRef};
use crate::view::View;
use std::borrow::Cow;

/// The arguments of a task or actor-method call.
///
/// Structured arguments are MessagePack; the typed accessors (`u64`, `f64`, `string`, ...)
/// decode them, whether the argument came inline or as an object (e.g. the result of
/// another task). Every accessor's error names the argument's index.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Args {
    items: Vec<Arg>,
}

/// A malformed argument: the driver gets `BAD_ARGUMENT`.
fn arg_error(i: usize, msg: impl std::fmt::Display) -> Error {
    Error::with_code(Code::BadArgument, format!("argument {}: {}", i, msg))
}

impl Args {
    /// Arguments from a list (what the SDK builds from the host's `list<arg>`).
    pub fn new(items: Vec<Arg>) -> Args {
        Args { items }
    }

    /// The number of arguments.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// True when there are no arguments.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// All arguments.
    pub fn as_slice(&self) -> &[Arg] {
        &self.items
    }

    /// Argument `i`, if present.
    pub fn get(&self, i: usize) -> Option<&Arg> {
        self.items.get(i)
    }

    /// Argument `i`, or an error naming it if it is missing.
    pub fn arg(&self, i: usize) -> Result<&Arg> {
        self.items.get(i).ok_or_else(|| {
            arg_error(
                i,
                format_args!("missing (the call has {} arguments)", self.items.len()),
            )
        })
    }

    /// Argument `i`'s raw bytes: borrowed if inline, copied from the store (host `get`) if an object.
    pub fn bytes(&self, i: usize) -> Result<Cow<'_, [u8]>> {
        match self.arg(i)? {
            Arg::Inline(b) => Ok(Cow::Borrowed(b)),
            Arg::Object(o) => host::get(o.id).map(Cow::Owned),
        }
    }

    /// Argument `i`'s raw bytes as UTF-8 text (not MessagePack; see [`Args::string`]).
    pub fn str(&self, i: usize) -> Result<Cow<'_, str>> {
        match self.bytes(i)? {
            Cow::Borrowed(b) => std::str::from_utf8(b)
                .map(Cow::Borrowed)
                .map_err(|e| arg_error(i, e)),
            Cow::Owned(b) => String::from_utf8(b)
                .map(Cow::Owned)
                .map_err(|e| arg_error(i, e)),
        }
    }

    /// Argument `i` decoded as a MessagePack value.
    pub fn value(&self, i: usize) -> Result<Value> {
        msgpack::decode(&self.bytes(i)?).map_err(|e| arg_error(i, e))
    }

    fn typed<T>(&self, i: usize, want: &str, get: impl FnOnce(&Value) -> Option<T>) -> Result<T> {
        let v = self.value(i)?;
        get(&v).ok_or_else(|| {
            arg_error(
                i,
                format_args!("expected {}, got {} ({})", want, v.type_name(), v),
            )
        })
    }

    /// Argument `i` as an unsigned integer.
    pub fn u64(&self, i: usize) -> Result<u64> {
        self.typed(i, "an unsigned integer", Value::as_u64)
    }

    /// Argument `i` as a signed integer.
    pub fn i64(&self, i: usize) -> Result<i64> {
        self.typed(i, "an integer", Value::as_i64)
    }

    /// Argument `i` as a float (integers are converted).
    pub fn f64(&self, i: usize) -> Result<f64> {
        self.typed(i, "a number", Value::as_f64)
    }

    /// Argument `i` as a boolean.
    pub fn bool(&self, i: usize) -> Result<bool> {
        self.typed(i, "a boolean", Value::as_bool)
    }

    /// Argument `i` as a MessagePack string.
    pub fn string(&self, i: usize) -> Result<String> {
        match self.value(i)? {
            Value::Str(s) => Ok(s),
            v => Err(arg_error(
                i,
                format_args!("expected a string, got {} ({})", v.type_name(), v),
            )),
        }
    }

    /// True if argument `i` is missing or MessagePack `nil` (for optional arguments).
    pub fn is_nil(&self, i: usize) -> bool {
        match self.items.get(i) {
            None => true,
            Some(Arg::Inline(b)) => b.as_slice() == [0xc0],
            Some(Arg::Object(_)) => false,
        }
    }

    /// Argument `i` as an object reference (an error if it was passed inline).
    pub fn object(&self, i: usize) -> Result<ObjectRef> {
        match self.arg(i)? {
            Arg::Object(o) => Ok(*o),
            Arg::Inline(b) => Err(arg_error(
                i,
                format_args!("expected an object, got {} inline bytes", b.len()),
            )),
        }
    }

    /// A zero-copy [`View`] of object argument `i`.
    pub fn view(&self, i: usize) -> Result<View> {
        View::map(self.object(i)?)
    }
}

impl From<Vec<Arg>> for Args {
    fn from(items: Vec<Arg>) -> Args {
        Args::new(items)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args() -> Args {
        Args::new(vec![
            Arg::from(7u64),
            Arg::from(-2i64),
            Arg::from(1.5f64),
            Arg::from("text"),
            Arg::bytes(&b"raw"[..]),
            Arg::object(ObjectRef::new(42, 800)),
            Arg::from(()),
            Arg::from(true),
        ])
    }

    #[test]
    fn typed_accessors() {
        let a = args();
        assert_eq!(a.len(), 8);
        assert_eq!(a.u64(0).unwrap(), 7);
        assert_eq!(a.i64(0).unwrap(), 7);
        assert_eq!(a.f64(0).unwrap(), 7.0);
        assert_eq!(a.i64(1).unwrap(), -2);
        assert_eq!(a.f64(2).unwrap(), 1.5);
        assert_eq!(a.string(3).unwrap(), "text");
        assert_eq!(&*a.str(4).unwrap(), "raw");
        assert_eq!(&*a.bytes(4).unwrap(), b"raw");
        assert_eq!(a.object(5).unwrap(), ObjectRef::new(42, 800));
        assert!(a.is_nil(6));
        assert!(a.is_nil(99));
        assert!(!a.is_nil(0));
        assert!(a.bool(7).unwrap());
    }

    #[test]
    fn errors_name_the_argument() {
        let a = args();
        let coded = |e: Error| format!("{}: {}", e.code(), e.message());
        assert_eq!(
            coded(a.u64(1).unwrap_err()),
            "BAD_ARGUMENT: argument 1: expected an unsigned integer, got int (-2)"
        );
        assert_eq!(
            coded(a.u64(9).unwrap_err()),
            "BAD_ARGUMENT: argument 9: missing (the call has 8 arguments)"
        );
        assert!(coded(a.object(0).unwrap_err())
            .starts_with("BAD_ARGUMENT: argument 0: expected an object"));
        assert!(a.string(0).is_err());
        assert!(a.value(4).is_err(), "raw bytes are not MessagePack");
    }
}

//! The values that cross the host boundary: object references, arguments, outputs.

use crate::msgpack::{encode, Value};

/// The id of an object in the node's object store.
pub type ObjectId = u64;

/// An object in the store: its id and its size in bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ObjectRef {
    /// The object's id.
    pub id: ObjectId,
    /// The object's size in bytes.
    pub size: u64,
}

impl ObjectRef {
    /// An object reference from its parts.
    pub fn new(id: ObjectId, size: u64) -> ObjectRef {
        ObjectRef { id, size }
    }
}

/// One argument of a task or an actor call: inline bytes or an object.
///
/// Inline arguments carry MessagePack for structured values ([`Arg::value`] and the
/// `From` impls) or raw bytes ([`Arg::bytes`]).
#[derive(Clone, Debug, PartialEq)]
pub enum Arg {
    /// Bytes passed by value.
    Inline(Vec<u8>),
    /// An object in the store, passed by reference.
    Object(ObjectRef),
}

impl Arg {
    /// Raw bytes passed by value (not MessagePack-encoded).
    pub fn bytes(data: impl Into<Vec<u8>>) -> Arg {
        Arg::Inline(data.into())
    }

    /// A structured value, MessagePack-encoded.
    pub fn value(value: &Value) -> Arg {
        Arg::Inline(encode(value))
    }

    /// An object passed by reference (the callee may view it zero-copy).
    pub fn object(object: ObjectRef) -> Arg {
        Arg::Object(object)
    }
}

macro_rules! arg_from_value {
    ($($t:ty),*) => {
        $(impl From<$t> for Arg {
            fn from(x: $t) -> Arg {
                Arg::value(&Value::from(x))
            }
        })*
    };
}

arg_from_value!(
    bool,
    u8,
    u16,
    u32,
    u64,
    usize,
    i8,
    i16,
    i32,
    i64,
    isize,
    f32,
    f64,
    &str,
    String,
    ()
);

impl From<Value> for Arg {
    fn from(v: Value) -> Arg {
        Arg::value(&v)
    }
}

impl From<&Value> for Arg {
    fn from(v: &Value) -> Arg {
        Arg::value(v)
    }
}

impl From<ObjectRef> for Arg {
    fn from(o: ObjectRef) -> Arg {
        Arg::Object(o)
    }
}

/// What a task or actor method returns.
///
/// `Bytes` become a new object holding those bytes (MessagePack for structured
/// values); `Object` names an object the guest stored with [`crate::put`] or received.
#[derive(Clone, Debug, PartialEq)]
pub enum Output {
    /// Bytes the host stores as the result object.
    Bytes(Vec<u8>),
    /// An existing object that is the result.
    Object(ObjectId),
}

impl Output {
    /// Raw bytes as the result (not MessagePack-encoded).
    pub fn bytes(data: impl Into<Vec<u8>>) -> Output {
        Output::Bytes(data.into())
    }

    /// A structured value, MessagePack-encoded.
    pub fn value(value: &Value) -> Output {
        Output::Bytes(encode(value))
    }

    /// MessagePack `nil`.
    pub fn nil() -> Output {
        Output::value(&Value::Nil)
    }

    /// An existing object as the result.
    pub fn object(object: ObjectRef) -> Output {
        Output::Object(object.id)
    }

    /// An existing object, by id, as the result.
    pub fn object_id(id: ObjectId) -> Output {
        Output::Object(id)
    }
}

macro_rules! output_from_value {
    ($($t:ty),*) => {
        $(impl From<$t> for Output {
            fn from(x: $t) -> Output {
                Output::value(&Value::from(x))
            }
        })*
    };
}

output_from_value!(
    bool,
    u8,
    u16,
    u32,
    u64,
    usize,
    i8,
    i16,
    i32,
    i64,
    isize,
    f32,
    f64,
    &str,
    String,
    ()
);

impl From<Value> for Output {
    fn from(v: Value) -> Output {
        Output::value(&v)
    }
}

impl From<&Value> for Output {
    fn from(v: &Value) -> Output {
        Output::value(v)
    }
}

impl From<ObjectRef> for Output {
    fn from(o: ObjectRef) -> Output {
        Output::object(o)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::msgpack::decode;

    #[test]
    fn outputs_encode_values() {
        match Output::from(2.5f64) {
            Output::Bytes(b) => assert_eq!(decode(&b).unwrap(), Value::F64(2.5)),
            other => panic!("{:?}", other),
        }
        assert_eq!(Output::from(()), Output::Bytes(vec![0xc0]));
        assert_eq!(Output::nil(), Output::Bytes(vec![0xc0]));
        assert_eq!(Output::from(ObjectRef::new(7, 9)), Output::Object(7));
        assert_eq!(Output::bytes(&b"raw"[..]), Output::Bytes(b"raw".to_vec()));
    }

    #[test]
    fn args_encode_values() {
        assert_eq!(Arg::from(3u64), Arg::Inline(vec![3]));
        assert_eq!(Arg::from("hi"), Arg::Inline(vec![0xa2, b'h', b'i']));
        assert_eq!(Arg::bytes(vec![1, 2]), Arg::Inline(vec![1, 2]));
        assert_eq!(
            Arg::from(ObjectRef::new(1, 2)),
            Arg::Object(ObjectRef { id: 1, size: 2 })
        );
    }
}

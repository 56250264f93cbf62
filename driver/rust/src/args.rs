//! Task and actor-call arguments: inline values (MessagePack, the encoding
//! every guest SDK reads) or object references.

use bytes::Bytes;
use serde::Serialize;

use crate::error::{Error, ErrorCode, Result};
use crate::object::ObjectRef;

/// One argument of a task or actor call.
#[derive(Clone, Debug)]
pub enum Arg {
    /// Bytes passed by value.
    Inline(Bytes),
    /// An object (the node waits for it if it is a pending result).
    Object(ObjectRef),
}

impl Arg {
    /// A structured value, MessagePack-encoded.
    pub fn value<T: Serialize + ?Sized>(v: &T) -> Result<Arg> {
        encode(v).map(|b| Arg::Inline(b.into()))
    }
    /// Raw bytes, as is.
    pub fn bytes(b: impl Into<Bytes>) -> Arg {
        Arg::Inline(b.into())
    }
}

pub(crate) fn encode<T: Serialize + ?Sized>(v: &T) -> Result<Vec<u8>> {
    rmp_serde::to_vec(v).map_err(|e| {
        Error::new(
            ErrorCode::BadArgument,
            format!("cannot encode the value: {e}"),
        )
    })
}

impl From<&ObjectRef> for Arg {
    fn from(r: &ObjectRef) -> Arg {
        Arg::Object(r.clone())
    }
}
impl From<ObjectRef> for Arg {
    fn from(r: ObjectRef) -> Arg {
        Arg::Object(r)
    }
}

macro_rules! value_args {
    ($($t:ty),*) => {$(
        impl From<$t> for Arg {
            fn from(v: $t) -> Arg {
                Arg::value(&v).expect("plain values always encode")
            }
        }
    )*};
}
value_args!(f64, f32, u64, i64, u32, i32, bool, String, &str);

//! Task and actor-call arguments: inline values (MessagePack, the encoding
//! every guest SDK reads) or object references.

use bytes::Bytes;
use serde::de::DeserializeOwned;
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
    /// The object passed, if it is one.
    pub(crate) fn object(&self) -> Option<&ObjectRef> {
        match self {
            Arg::Object(r) => Some(r),
            Arg::Inline(_) => None,
        }
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

/// Decodes a MessagePack value (what `Cluster::get` does with an object's
/// bytes): exactly one value, with no bytes after it (as every guest SDK reads).
pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    let mut de = rmp_serde::Deserializer::new(std::io::Cursor::new(bytes));
    let value = T::deserialize(&mut de).map_err(crate::error::decode)?;
    let used = de.get_ref().position();
    if used != bytes.len() as u64 {
        return Err(crate::error::decode(format!(
            "{} bytes after the value",
            bytes.len() as u64 - used
        )));
    }
    Ok(value)
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

/// The shared golden vectors (`tests/golden/msgpack.json`): the driver's
/// MessagePack must be every guest SDK's.
#[cfg(test)]
mod golden_tests {
    use reef_testkit::golden::{self, Value};

    fn rmpv(v: &Value) -> rmpv::Value {
        match v {
            Value::Nil => rmpv::Value::Nil,
            Value::Bool(b) => rmpv::Value::Boolean(*b),
            Value::Int(n) if *n >= 0 => rmpv::Value::from(u64::try_from(*n).unwrap()),
            Value::Int(n) => rmpv::Value::from(i64::try_from(*n).unwrap()),
            Value::F64(x) => rmpv::Value::F64(*x),
            Value::F32(x) => rmpv::Value::F32(*x),
            Value::Str(s) => rmpv::Value::from(s.as_str()),
            Value::Bin(b) => rmpv::Value::Binary(b.clone()),
            Value::Array(items) => rmpv::Value::Array(items.iter().map(rmpv).collect()),
            Value::Map(pairs) => {
                rmpv::Value::Map(pairs.iter().map(|(k, x)| (rmpv(k), rmpv(x))).collect())
            }
        }
    }

    #[test]
    fn values_encode_to_the_golden_bytes() {
        let mut checked = 0;
        for v in golden::msgpack().vectors.iter().filter(|v| v.encode) {
            let got = super::encode(&rmpv(&v.value)).unwrap();
            assert!(got == v.bytes, "{}: encoded {got:02x?}", v.name);
            checked += 1;
        }
        assert!(checked > 50);
    }

    #[test]
    fn golden_bytes_decode_to_their_values() {
        for v in golden::msgpack().vectors {
            let got: rmpv::Value =
                super::decode(&v.bytes).unwrap_or_else(|e| panic!("{}: {e}", v.name));
            assert_eq!(got, rmpv(&v.value), "{}", v.name);
        }
    }

    #[test]
    fn golden_invalid_inputs_are_refused() {
        for (name, bytes) in golden::msgpack().invalid {
            let got = super::decode::<rmpv::Value>(&bytes);
            assert!(got.is_err(), "{name}: decoded as {got:?}");
        }
    }
}

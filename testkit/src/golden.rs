//! The shared golden MessagePack vectors (`tests/golden/msgpack.json`), read
//! into typed values for the Rust-side checks of an SDK's codec (the Rust
//! driver's, the C SDK's through a native harness). The file's `about` field
//! describes the format; the guest SDKs in other languages read it themselves.

use std::path::PathBuf;

use serde_json::Value as Json;

/// A value as the golden file describes it.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Nil,
    Bool(bool),
    /// Any integer, signed or not.
    Int(i128),
    F64(f64),
    F32(f32),
    Str(String),
    Bin(Vec<u8>),
    Array(Vec<Value>),
    /// Pairs in encoding order.
    Map(Vec<(Value, Value)>),
}

/// One vector: a value and its MessagePack bytes.
#[derive(Clone, Debug)]
pub struct Vector {
    pub name: String,
    pub value: Value,
    pub bytes: Vec<u8>,
    /// False for a longer form than needed: decoders read it as `value`,
    /// encoders write the shortest form instead.
    pub encode: bool,
}

/// The whole file.
#[derive(Clone, Debug)]
pub struct Golden {
    pub vectors: Vec<Vector>,
    /// Inputs every decoder must refuse: (name, bytes).
    pub invalid: Vec<(String, Vec<u8>)>,
}

/// The file's path in this workspace.
pub fn msgpack_path() -> PathBuf {
    crate::workspace_root().join("tests/golden/msgpack.json")
}

/// Reads and parses the golden file; panics on a malformed one.
pub fn msgpack() -> Golden {
    let path = msgpack_path();
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let json: Json = serde_json::from_str(&text).expect("the golden file is JSON");
    let vectors = json["vectors"]
        .as_array()
        .expect("vectors")
        .iter()
        .map(|v| Vector {
            name: v["name"].as_str().expect("name").to_string(),
            value: value(&v["value"]),
            bytes: bytes(&v["hex"]),
            encode: v["encode"].as_bool().unwrap_or(true),
        })
        .collect();
    let invalid = json["invalid"]
        .as_array()
        .expect("invalid")
        .iter()
        .map(|v| {
            (
                v["name"].as_str().expect("name").to_string(),
                bytes(&v["hex"]),
            )
        })
        .collect();
    Golden { vectors, invalid }
}

/// The bytes of `hex` parts (`"HH*n"` repeats a byte).
fn bytes(parts: &Json) -> Vec<u8> {
    let mut out = Vec::new();
    for part in parts.as_array().expect("hex parts") {
        let part = part.as_str().expect("a hex part");
        match part.split_once('*') {
            Some((byte, n)) => out.extend(std::iter::repeat_n(
                unhex(byte)[0],
                n.parse().expect("a repeat count"),
            )),
            None => out.extend(unhex(part)),
        }
    }
    out
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

fn float(s: &str) -> f64 {
    match s {
        "Infinity" => f64::INFINITY,
        "-Infinity" => f64::NEG_INFINITY,
        s => s.parse().expect("a float"),
    }
}

fn value(desc: &Json) -> Value {
    let obj = desc.as_object().expect("a value description is an object");
    let times = obj.get("repeat").and_then(Json::as_u64).unwrap_or(1) as usize;
    let (tag, v) = obj
        .iter()
        .find(|(k, _)| *k != "repeat")
        .expect("a value tag");
    let text = || v.as_str().expect("a string");
    match tag.as_str() {
        "nil" => Value::Nil,
        "bool" => Value::Bool(v.as_bool().expect("a bool")),
        "int" => Value::Int(text().parse().expect("an integer")),
        "f64" => Value::F64(float(text())),
        "f32" => Value::F32(float(text()) as f32),
        "str" => Value::Str(text().repeat(times)),
        "bin" => Value::Bin(unhex(text()).repeat(times)),
        "array" => {
            let items: Vec<Value> = v.as_array().expect("items").iter().map(value).collect();
            Value::Array(std::iter::repeat_n(items, times).flatten().collect())
        }
        "map" => Value::Map(
            v.as_array()
                .expect("pairs")
                .iter()
                .map(|pair| (value(&pair[0]), value(&pair[1])))
                .collect(),
        ),
        other => panic!("unknown value tag {other}"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_golden_file_parses_and_covers_every_type() {
        let golden = super::msgpack();
        assert!(golden.vectors.len() > 50);
        assert!(!golden.invalid.is_empty());
        let has = |f: fn(&super::Value) -> bool| golden.vectors.iter().any(|v| f(&v.value));
        use super::Value::*;
        assert!(has(|v| matches!(v, Nil)));
        assert!(has(|v| matches!(v, Bool(_))));
        assert!(has(|v| matches!(v, Int(n) if *n < 0)));
        assert!(has(|v| matches!(v, Int(n) if *n > u32::MAX as i128)));
        assert!(has(|v| matches!(v, F64(_))));
        assert!(has(|v| matches!(v, F32(_))));
        assert!(has(|v| matches!(v, Str(s) if s.len() > 65535)));
        assert!(has(|v| matches!(v, Bin(b) if b.len() > 65535)));
        assert!(has(|v| matches!(v, Array(a) if a.len() > 65535)));
        assert!(has(|v| matches!(v, Map(m) if m.len() > 15)));
    }
}

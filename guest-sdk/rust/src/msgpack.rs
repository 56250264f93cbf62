//! A small, self-contained MessagePack codec.
//!
//! [`Value`] covers every MessagePack type except extensions (which decode as an
//! error). Encoding always picks the shortest form; decoding accepts every form.

use crate::error::{Error, Result};
use std::fmt;

/// Nesting deeper than this is rejected when decoding (protects the guest's stack).
pub const MAX_DEPTH: usize = 512;

/// A MessagePack value.
///
/// Decoding yields `UInt` for non-negative "positive fixint" and `uint*` forms and
/// `Int` for negative fixints and `int*` forms; use [`Value::as_u64`] /
/// [`Value::as_i64`] to read either.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// `nil`.
    Nil,
    /// `true` / `false`.
    Bool(bool),
    /// A signed integer (encoded in the shortest form; non-negative values as unsigned).
    Int(i64),
    /// An unsigned integer.
    UInt(u64),
    /// A 32-bit float.
    F32(f32),
    /// A 64-bit float.
    F64(f64),
    /// A UTF-8 string.
    Str(String),
    /// Raw bytes.
    Bin(Vec<u8>),
    /// An array.
    Array(Vec<Value>),
    /// A map, in encoding order (keys may be any value).
    Map(Vec<(Value, Value)>),
}

impl Value {
    /// Encodes the value as MessagePack.
    pub fn to_bytes(&self) -> Vec<u8> {
        encode(self)
    }

    /// Decodes exactly one value that must span all of `bytes`.
    pub fn from_bytes(bytes: &[u8]) -> Result<Value> {
        decode(bytes)
    }

    /// A short name of the value's type, for error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Nil => "nil",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::UInt(_) => "uint",
            Value::F32(_) => "f32",
            Value::F64(_) => "f64",
            Value::Str(_) => "str",
            Value::Bin(_) => "bin",
            Value::Array(_) => "array",
            Value::Map(_) => "map",
        }
    }

    /// True for `Nil`.
    pub fn is_nil(&self) -> bool {
        matches!(self, Value::Nil)
    }

    /// The boolean, if this is a `Bool`.
    pub fn as_bool(&self) -> Option<bool> {
        match *self {
            Value::Bool(b) => Some(b),
            _ => None,
        }
    }

    /// The integer as `u64`, if it is an integer that fits.
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            Value::UInt(n) => Some(n),
            Value::Int(n) if n >= 0 => Some(n as u64),
            _ => None,
        }
    }

    /// The integer as `i64`, if it is an integer that fits.
    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            Value::Int(n) => Some(n),
            Value::UInt(n) if n <= i64::MAX as u64 => Some(n as i64),
            _ => None,
        }
    }

    /// The number as `f64`: floats as they are, integers converted (possibly rounded).
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Value::F64(x) => Some(x),
            Value::F32(x) => Some(x as f64),
            Value::Int(n) => Some(n as f64),
            Value::UInt(n) => Some(n as f64),
            _ => None,
        }
    }

    /// The string, if this is a `Str`.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The bytes, if this is a `Bin`.
    pub fn as_bin(&self) -> Option<&[u8]> {
        match self {
            Value::Bin(b) => Some(b),
            _ => None,
        }
    }

    /// The elements, if this is an `Array`.
    pub fn as_array(&self) -> Option<&[Value]> {
        match self {
            Value::Array(a) => Some(a),
            _ => None,
        }
    }

    /// The entries, if this is a `Map`.
    pub fn as_map(&self) -> Option<&[(Value, Value)]> {
        match self {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }

    /// The value stored under the string key `key`, if this is a map that has it.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.as_map()?
            .iter()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(_, v)| v)
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Nil => f.write_str("nil"),
            Value::Bool(b) => write!(f, "{}", b),
            Value::Int(n) => write!(f, "{}", n),
            Value::UInt(n) => write!(f, "{}", n),
            Value::F32(x) => write!(f, "{}", x),
            Value::F64(x) => write!(f, "{}", x),
            Value::Str(s) => write!(f, "{:?}", s),
            Value::Bin(b) => write!(f, "<{} bytes>", b.len()),
            Value::Array(a) => {
                f.write_str("[")?;
                for (i, v) in a.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{}", v)?;
                }
                f.write_str("]")
            }
            Value::Map(m) => {
                f.write_str("{")?;
                for (i, (k, v)) in m.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{}: {}", k, v)?;
                }
                f.write_str("}")
            }
        }
    }
}

macro_rules! value_from {
    ($($t:ty => $variant:ident as $as:ty),* $(,)?) => {
        $(impl From<$t> for Value {
            fn from(x: $t) -> Value {
                Value::$variant(x as $as)
            }
        })*
    };
}

value_from! {
    u8 => UInt as u64, u16 => UInt as u64, u32 => UInt as u64, u64 => UInt as u64, usize => UInt as u64,
    i8 => Int as i64, i16 => Int as i64, i32 => Int as i64, i64 => Int as i64, isize => Int as i64,
    f32 => F32 as f32, f64 => F64 as f64,
}

impl From<bool> for Value {
    fn from(b: bool) -> Value {
        Value::Bool(b)
    }
}

impl From<()> for Value {
    fn from(_: ()) -> Value {
        Value::Nil
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::Str(s.to_string())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Value {
        Value::Str(s)
    }
}

impl From<Vec<Value>> for Value {
    fn from(a: Vec<Value>) -> Value {
        Value::Array(a)
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(o: Option<T>) -> Value {
        match o {
            Some(v) => v.into(),
            None => Value::Nil,
        }
    }
}

/// Encodes `value` as MessagePack.
pub fn encode(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    encode_into(value, &mut out);
    out
}

/// Appends the MessagePack encoding of `value` to `out`.
///
/// Panics if a string, binary, array or map is longer than `u32::MAX` (MessagePack's limit).
pub fn encode_into(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Nil => out.push(0xc0),
        Value::Bool(false) => out.push(0xc2),
        Value::Bool(true) => out.push(0xc3),
        Value::UInt(n) => encode_uint(*n, out),
        Value::Int(n) => encode_int(*n, out),
        Value::F32(x) => {
            out.push(0xca);
            out.extend_from_slice(&x.to_be_bytes());
        }
        Value::F64(x) => {
            out.push(0xcb);
            out.extend_from_slice(&x.to_be_bytes());
        }
        Value::Str(s) => {
            encode_len(s.len(), Some(0xa0), 31, [0xd9, 0xda, 0xdb], out);
            out.extend_from_slice(s.as_bytes());
        }
        Value::Bin(b) => {
            encode_len(b.len(), None, 0, [0xc4, 0xc5, 0xc6], out);
            out.extend_from_slice(b);
        }
        Value::Array(a) => {
            encode_container_len(a.len(), 0x90, [0xdc, 0xdd], out);
            for v in a {
                encode_into(v, out);
            }
        }
        Value::Map(m) => {
            encode_container_len(m.len(), 0x80, [0xde, 0xdf], out);
            for (k, v) in m {
                encode_into(k, out);
                encode_into(v, out);
            }
        }
    }
}

fn encode_uint(n: u64, out: &mut Vec<u8>) {
    if n < 0x80 {
        out.push(n as u8);
    } else if n <= u8::MAX as u64 {
        out.extend_from_slice(&[0xcc, n as u8]);
    } else if n <= u16::MAX as u64 {
        out.push(0xcd);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else if n <= u32::MAX as u64 {
        out.push(0xce);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    } else {
        out.push(0xcf);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

fn encode_int(n: i64, out: &mut Vec<u8>) {
    if n >= 0 {
        encode_uint(n as u64, out);
    } else if n >= -32 {
        out.push(n as i8 as u8);
    } else if n >= i8::MIN as i64 {
        out.extend_from_slice(&[0xd0, n as i8 as u8]);
    } else if n >= i16::MIN as i64 {
        out.push(0xd1);
        out.extend_from_slice(&(n as i16).to_be_bytes());
    } else if n >= i32::MIN as i64 {
        out.push(0xd2);
        out.extend_from_slice(&(n as i32).to_be_bytes());
    } else {
        out.push(0xd3);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

/// Length header of str/bin: an optional fix form (`fix | len` up to `fix_max`), then 8/16/32-bit forms.
fn encode_len(len: usize, fix: Option<u8>, fix_max: usize, markers: [u8; 3], out: &mut Vec<u8>) {
    match fix {
        Some(base) if len <= fix_max => out.push(base | len as u8),
        _ if len <= u8::MAX as usize => out.extend_from_slice(&[markers[0], len as u8]),
        _ if len <= u16::MAX as usize => {
            out.push(markers[1]);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            out.push(markers[2]);
            out.extend_from_slice(&len_u32(len).to_be_bytes());
        }
    }
}

/// Length header of array/map: fix form up to 15, then 16/32-bit forms.
fn encode_container_len(len: usize, fix: u8, markers: [u8; 2], out: &mut Vec<u8>) {
    if len <= 15 {
        out.push(fix | len as u8);
    } else if len <= u16::MAX as usize {
        out.push(markers[0]);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(markers[1]);
        out.extend_from_slice(&len_u32(len).to_be_bytes());
    }
}

fn len_u32(len: usize) -> u32 {
    match u32::try_from(len) {
        Ok(n) => n,
        Err(_) => panic!(
            "MessagePack cannot encode a length of {} (max u32::MAX)",
            len
        ),
    }
}

/// Decodes exactly one value spanning all of `bytes` (trailing bytes are an error).
pub fn decode(bytes: &[u8]) -> Result<Value> {
    let (value, used) = decode_prefix(bytes)?;
    if used != bytes.len() {
        return Err(Error::new(format!(
            "MessagePack: {} trailing bytes after the value",
            bytes.len() - used
        )));
    }
    Ok(value)
}

/// Decodes one value from the start of `bytes`; returns it and the number of bytes it used.
pub fn decode_prefix(bytes: &[u8]) -> Result<(Value, usize)> {
    let mut reader = Reader { buf: bytes, pos: 0 };
    let value = reader.value(0)?;
    Ok((value, reader.pos))
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let remaining = self.buf.len() - self.pos;
        if n > remaining {
            return Err(Error::new(format!(
                "MessagePack: truncated input (need {} more bytes at offset {}, have {})",
                n, self.pos, remaining
            )));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    fn len(&mut self, width: u8) -> Result<usize> {
        let n = match width {
            1 => self.u8()? as u64,
            2 => self.u16()? as u64,
            _ => self.u32()? as u64,
        };
        usize::try_from(n).map_err(|_| Error::new("MessagePack: length too large"))
    }

    fn str(&mut self, len: usize) -> Result<Value> {
        let bytes = self.take(len)?;
        match std::str::from_utf8(bytes) {
            Ok(s) => Ok(Value::Str(s.to_string())),
            Err(e) => Err(Error::new(format!(
                "MessagePack: string is not UTF-8: {}",
                e
            ))),
        }
    }

    fn bin(&mut self, len: usize) -> Result<Value> {
        Ok(Value::Bin(self.take(len)?.to_vec()))
    }

    fn seq(&mut self, len: usize, depth: usize) -> Result<Value> {
        // Every element takes at least one byte: never reserve more than the input can hold.
        let mut items = Vec::with_capacity(len.min(self.buf.len() - self.pos));
        for _ in 0..len {
            items.push(self.value(depth + 1)?);
        }
        Ok(Value::Array(items))
    }

    fn map(&mut self, len: usize, depth: usize) -> Result<Value> {
        let mut entries = Vec::with_capacity(len.min((self.buf.len() - self.pos) / 2));
        for _ in 0..len {
            let k = self.value(depth + 1)?;
            let v = self.value(depth + 1)?;
            entries.push((k, v));
        }
        Ok(Value::Map(entries))
    }

    fn value(&mut self, depth: usize) -> Result<Value> {
        if depth >= MAX_DEPTH {
            return Err(Error::new("MessagePack: nesting too deep"));
        }
        let at = self.pos;
        let marker = self.u8()?;
        match marker {
            0x00..=0x7f => Ok(Value::UInt(marker as u64)),
            0x80..=0x8f => self.map((marker & 0x0f) as usize, depth),
            0x90..=0x9f => self.seq((marker & 0x0f) as usize, depth),
            0xa0..=0xbf => self.str((marker & 0x1f) as usize),
            0xc0 => Ok(Value::Nil),
            0xc2 => Ok(Value::Bool(false)),
            0xc3 => Ok(Value::Bool(true)),
            0xc4 => {
                let n = self.len(1)?;
                self.bin(n)
            }
            0xc5 => {
                let n = self.len(2)?;
                self.bin(n)
            }
            0xc6 => {
                let n = self.len(4)?;
                self.bin(n)
            }
            0xc7..=0xc9 | 0xd4..=0xd8 => Err(Error::new(format!(
                "MessagePack: extension types are not supported (marker 0x{:02x} at offset {})",
                marker, at
            ))),
            0xca => Ok(Value::F32(f32::from_be_bytes(self.array()?))),
            0xcb => Ok(Value::F64(f64::from_be_bytes(self.array()?))),
            0xcc => Ok(Value::UInt(self.u8()? as u64)),
            0xcd => Ok(Value::UInt(self.u16()? as u64)),
            0xce => Ok(Value::UInt(self.u32()? as u64)),
            0xcf => Ok(Value::UInt(self.u64()?)),
            0xd0 => Ok(Value::Int(self.u8()? as i8 as i64)),
            0xd1 => Ok(Value::Int(self.u16()? as i16 as i64)),
            0xd2 => Ok(Value::Int(self.u32()? as i32 as i64)),
            0xd3 => Ok(Value::Int(self.u64()? as i64)),
            0xd9 => {
                let n = self.len(1)?;
                self.str(n)
            }
            0xda => {
                let n = self.len(2)?;
                self.str(n)
            }
            0xdb => {
                let n = self.len(4)?;
                self.str(n)
            }
            0xdc => {
                let n = self.len(2)?;
                self.seq(n, depth)
            }
            0xdd => {
                let n = self.len(4)?;
                self.seq(n, depth)
            }
            0xde => {
                let n = self.len(2)?;
                self.map(n, depth)
            }
            0xdf => {
                let n = self.len(4)?;
                self.map(n, depth)
            }
            0xe0..=0xff => Ok(Value::Int(marker as i8 as i64)),
            0xc1 => Err(Error::new(format!(
                "MessagePack: invalid marker 0xc1 at offset {}",
                at
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{:02x}", b)).collect()
    }

    fn roundtrip(v: Value) {
        let bytes = encode(&v);
        let back = decode(&bytes).unwrap_or_else(|e| panic!("decode {}: {}", hex(&bytes), e));
        assert_eq!(normalize(back), normalize(v));
    }

    /// Integers compare by value whatever their variant.
    fn normalize(v: Value) -> Value {
        match v {
            Value::Int(n) if n >= 0 => Value::UInt(n as u64),
            Value::Array(a) => Value::Array(a.into_iter().map(normalize).collect()),
            Value::Map(m) => Value::Map(
                m.into_iter()
                    .map(|(k, v)| (normalize(k), normalize(v)))
                    .collect(),
            ),
            other => other,
        }
    }

    #[test]
    fn unsigned_shortest_forms() {
        let cases: &[(u64, &str)] = &[
            (0, "00"),
            (127, "7f"),
            (128, "cc80"),
            (255, "ccff"),
            (256, "cd0100"),
            (65535, "cdffff"),
            (65536, "ce00010000"),
            (u32::MAX as u64, "ceffffffff"),
            (u32::MAX as u64 + 1, "cf0000000100000000"),
            (u64::MAX, "cfffffffffffffffff"),
        ];
        for &(n, want) in cases {
            assert_eq!(hex(&encode(&Value::UInt(n))), want, "{}", n);
            assert_eq!(decode(&encode(&Value::UInt(n))).unwrap(), Value::UInt(n));
        }
    }

    #[test]
    fn signed_shortest_forms() {
        let cases: &[(i64, &str)] = &[
            (5, "05"),
            (-1, "ff"),
            (-32, "e0"),
            (-33, "d0df"),
            (-128, "d080"),
            (-129, "d1ff7f"),
            (-32768, "d18000"),
            (-32769, "d2ffff7fff"),
            (i32::MIN as i64, "d280000000"),
            (i32::MIN as i64 - 1, "d3ffffffff7fffffff"),
            (i64::MIN, "d38000000000000000"),
        ];
        for &(n, want) in cases {
            assert_eq!(hex(&encode(&Value::Int(n))), want, "{}", n);
            assert_eq!(decode(&encode(&Value::Int(n))).unwrap().as_i64(), Some(n));
        }
    }

    #[test]
    fn signed_forms_with_positive_values_decode() {
        // int8 1, int16 300, int32 70000, int64 5: other encoders may use these.
        assert_eq!(decode(&[0xd0, 0x01]).unwrap(), Value::Int(1));
        assert_eq!(decode(&[0xd1, 0x01, 0x2c]).unwrap(), Value::Int(300));
        assert_eq!(
            decode(&[0xd2, 0x00, 0x01, 0x11, 0x70]).unwrap(),
            Value::Int(70000)
        );
        assert_eq!(
            decode(&[0xd3, 0, 0, 0, 0, 0, 0, 0, 5]).unwrap(),
            Value::Int(5)
        );
        assert_eq!(decode(&[0xcd, 0x00, 0x01]).unwrap(), Value::UInt(1));
    }

    #[test]
    fn floats() {
        assert_eq!(hex(&encode(&Value::F64(1.5))), "cb3ff8000000000000");
        assert_eq!(hex(&encode(&Value::F32(1.5))), "ca3fc00000");
        assert_eq!(decode(&[0xca, 0x3f, 0xc0, 0, 0]).unwrap(), Value::F32(1.5));
        roundtrip(Value::F64(-0.0));
        roundtrip(Value::F64(f64::INFINITY));
        roundtrip(Value::F64(f64::MIN_POSITIVE));
        let nan = decode(&encode(&Value::F64(f64::NAN))).unwrap();
        assert!(nan.as_f64().unwrap().is_nan());
    }

    #[test]
    fn nil_and_bools() {
        assert_eq!(encode(&Value::Nil), vec![0xc0]);
        assert_eq!(encode(&Value::Bool(false)), vec![0xc2]);
        assert_eq!(encode(&Value::Bool(true)), vec![0xc3]);
        assert_eq!(decode(&[0xc3]).unwrap(), Value::Bool(true));
        assert_eq!(decode(&[0xc0]).unwrap(), Value::Nil);
    }

    #[test]
    fn string_length_forms() {
        for &(len, header) in &[
            (0usize, "a0"),
            (31, "bf"),
            (32, "d920"),
            (255, "d9ff"),
            (256, "da0100"),
            (65535, "daffff"),
            (65536, "db00010000"),
        ] {
            let s = "x".repeat(len);
            let bytes = encode(&Value::Str(s.clone()));
            assert!(hex(&bytes).starts_with(header), "len {}", len);
            assert_eq!(bytes.len(), header.len() / 2 + len);
            assert_eq!(decode(&bytes).unwrap(), Value::Str(s));
        }
        roundtrip(Value::Str("héllo, wörld ✓".to_string()));
    }

    #[test]
    fn binary_length_forms() {
        for &(len, header) in &[
            (0usize, "c400"),
            (255, "c4ff"),
            (256, "c50100"),
            (65535, "c5ffff"),
            (65536, "c600010000"),
        ] {
            let b = vec![7u8; len];
            let bytes = encode(&Value::Bin(b.clone()));
            assert!(hex(&bytes).starts_with(header), "len {}", len);
            assert_eq!(decode(&bytes).unwrap(), Value::Bin(b));
        }
    }

    #[test]
    fn array_and_map_length_forms() {
        for &(len, header) in &[
            (0usize, "90"),
            (15, "9f"),
            (16, "dc0010"),
            (65535, "dcffff"),
            (65536, "dd00010000"),
        ] {
            let a = Value::Array(vec![Value::Nil; len]);
            let bytes = encode(&a);
            assert!(hex(&bytes).starts_with(header), "len {}", len);
            assert_eq!(decode(&bytes).unwrap(), a);
        }
        for &(len, header) in &[
            (0usize, "80"),
            (15, "8f"),
            (16, "de0010"),
            (65536, "df00010000"),
        ] {
            let m = Value::Map(
                (0..len)
                    .map(|i| (Value::UInt(i as u64), Value::Bool(i % 2 == 0)))
                    .collect(),
            );
            let bytes = encode(&m);
            assert!(hex(&bytes).starts_with(header), "len {}", len);
            assert_eq!(decode(&bytes).unwrap(), m);
        }
    }

    #[test]
    fn nested_values_roundtrip() {
        let v = Value::Map(vec![
            (Value::from("name"), Value::from("reef")),
            (
                Value::from("xs"),
                Value::Array(vec![
                    Value::from(1.5f64),
                    Value::from(-7i64),
                    Value::from(300u64),
                    Value::Nil,
                    Value::Bin(vec![1, 2, 3]),
                ]),
            ),
            (Value::UInt(1), Value::Map(vec![])),
        ]);
        roundtrip(v.clone());
        assert_eq!(v.get("name").and_then(Value::as_str), Some("reef"));
        assert_eq!(v.get("missing"), None);
    }

    #[test]
    fn known_encoding_of_a_map() {
        // {"compact": true, "schema": 0} from the MessagePack home page.
        let v = Value::Map(vec![
            (Value::from("compact"), Value::Bool(true)),
            (Value::from("schema"), Value::UInt(0)),
        ]);
        assert_eq!(hex(&encode(&v)), "82a7636f6d70616374c3a6736368656d6100");
    }

    #[test]
    fn errors() {
        assert!(decode(&[]).is_err());
        assert!(decode(&[0xc1]).is_err());
        assert!(decode(&[0xcd, 0x01]).is_err(), "truncated u16");
        assert!(decode(&[0xa3, b'a']).is_err(), "truncated str");
        assert!(decode(&[0xa2, 0xff, 0xfe]).is_err(), "invalid UTF-8");
        assert!(decode(&[0x01, 0x02]).is_err(), "trailing bytes");
        for marker in [0xc7u8, 0xc8, 0xc9, 0xd4, 0xd5, 0xd6, 0xd7, 0xd8] {
            let err = decode(&[marker, 0, 0, 0, 0, 0]).unwrap_err();
            assert!(err.message().contains("extension"), "{}", err);
        }
        // A huge declared length with no data must fail without reserving memory.
        assert!(decode(&[0xdd, 0xff, 0xff, 0xff, 0xff]).is_err());
        assert!(decode(&[0xdf, 0xff, 0xff, 0xff, 0xff]).is_err());
        assert!(decode(&[0xc6, 0xff, 0xff, 0xff, 0xff]).is_err());
    }

    #[test]
    fn depth_limit() {
        let deep = vec![0x91u8; MAX_DEPTH + 1];
        let err = decode(&deep).unwrap_err();
        assert!(err.message().contains("deep"), "{}", err);
        let mut ok = vec![0x91u8; MAX_DEPTH - 1];
        ok.push(0xc0);
        assert!(decode(&ok).is_ok());
    }

    #[test]
    fn decode_prefix_reports_used_bytes() {
        let (v, used) = decode_prefix(&[0x05, 0xc0]).unwrap();
        assert_eq!((v, used), (Value::UInt(5), 1));
    }

    #[test]
    fn accessors() {
        assert_eq!(Value::Int(-1).as_u64(), None);
        assert_eq!(Value::UInt(u64::MAX).as_i64(), None);
        assert_eq!(Value::UInt(3).as_f64(), Some(3.0));
        assert_eq!(Value::Str("a".into()).as_f64(), None);
        assert_eq!(Value::from(Some(2u8)), Value::UInt(2));
        assert_eq!(Value::from(None::<u8>), Value::Nil);
        assert_eq!(Value::from(()).to_string(), "nil");
    }
}

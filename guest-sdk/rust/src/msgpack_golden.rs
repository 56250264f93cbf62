//! The shared golden vectors (`tests/golden/msgpack.json` at the repository
//! root): every vector's value encodes to its bytes (shortest forms), every
//! vector's bytes decode to its value, every invalid input is refused.
//!
//! The SDK has no dependencies (it builds offline with Debian's rustc 1.63),
//! so the file is read with the small JSON reader below: enough for this file.

use crate::msgpack::{decode, encode, Value};

const GOLDEN: &str = include_str!("../../../tests/golden/msgpack.json");

/// A JSON value.
#[derive(Clone, Debug, PartialEq)]
enum Json {
    Null,
    Bool(bool),
    Num(f64),
    Str(String),
    Arr(Vec<Json>),
    Obj(Vec<(String, Json)>),
}

impl Json {
    fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Obj(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }
    fn str(&self) -> &str {
        match self {
            Json::Str(s) => s,
            other => panic!("expected a string, got {:?}", other),
        }
    }
    fn arr(&self) -> &[Json] {
        match self {
            Json::Arr(a) => a,
            other => panic!("expected an array, got {:?}", other),
        }
    }
}

struct Parser<'a> {
    s: &'a [u8],
    pos: usize,
}

impl<'a> Parser<'a> {
    fn ws(&mut self) {
        while self.pos < self.s.len() && b" \t\r\n".contains(&self.s[self.pos]) {
            self.pos += 1;
        }
    }
    fn eat(&mut self, c: u8) {
        self.ws();
        assert_eq!(
            self.s[self.pos], c,
            "JSON: expected {:?} at {}",
            c as char, self.pos
        );
        self.pos += 1;
    }
    fn peek(&mut self) -> u8 {
        self.ws();
        self.s[self.pos]
    }
    fn value(&mut self) -> Json {
        match self.peek() {
            b'{' => {
                self.eat(b'{');
                let mut entries = Vec::new();
                if self.peek() == b'}' {
                    self.pos += 1;
                    return Json::Obj(entries);
                }
                loop {
                    let key = self.string();
                    self.eat(b':');
                    entries.push((key, self.value()));
                    if self.peek() == b',' {
                        self.pos += 1;
                    } else {
                        self.eat(b'}');
                        return Json::Obj(entries);
                    }
                }
            }
            b'[' => {
                self.eat(b'[');
                let mut items = Vec::new();
                if self.peek() == b']' {
                    self.pos += 1;
                    return Json::Arr(items);
                }
                loop {
                    items.push(self.value());
                    if self.peek() == b',' {
                        self.pos += 1;
                    } else {
                        self.eat(b']');
                        return Json::Arr(items);
                    }
                }
            }
            b'"' => Json::Str(self.string()),
            _ => self.literal(),
        }
    }
    fn literal(&mut self) -> Json {
        let start = self.pos;
        while self.pos < self.s.len() && !b",]} \n".contains(&self.s[self.pos]) {
            self.pos += 1;
        }
        match std::str::from_utf8(&self.s[start..self.pos]).unwrap() {
            "null" => Json::Null,
            "true" => Json::Bool(true),
            "false" => Json::Bool(false),
            n => Json::Num(
                n.parse()
                    .unwrap_or_else(|_| panic!("JSON: bad literal {}", n)),
            ),
        }
    }
    fn string(&mut self) -> String {
        self.eat(b'"');
        let mut out = Vec::new();
        loop {
            let c = self.s[self.pos];
            self.pos += 1;
            match c {
                b'"' => return String::from_utf8(out).unwrap(),
                b'\\' => {
                    let e = self.s[self.pos];
                    self.pos += 1;
                    let ch = match e {
                        b'n' => '\n',
                        b't' => '\t',
                        b'r' => '\r',
                        b'u' => {
                            let h = std::str::from_utf8(&self.s[self.pos..self.pos + 4]).unwrap();
                            self.pos += 4;
                            char::from_u32(u32::from_str_radix(h, 16).unwrap()).unwrap()
                        }
                        other => other as char,
                    };
                    let mut buf = [0u8; 4];
                    out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                }
                _ => out.push(c),
            }
        }
    }
}

fn parse(text: &str) -> Json {
    let mut p = Parser {
        s: text.as_bytes(),
        pos: 0,
    };
    p.value()
}

/// The bytes of a vector's `hex` parts (`"HH*n"` repeats a byte).
fn bytes(parts: &Json) -> Vec<u8> {
    let mut out = Vec::new();
    for part in parts.arr() {
        let part = part.str();
        match part.split_once('*') {
            Some((byte, n)) => {
                let b = u8::from_str_radix(byte, 16).unwrap();
                out.extend(std::iter::repeat(b).take(n.parse().unwrap()));
            }
            None => out.extend(unhex(part)),
        }
    }
    out
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn repeat(desc: &Json) -> usize {
    match desc.get("repeat") {
        Some(Json::Num(n)) => *n as usize,
        _ => 1,
    }
}

fn float(s: &str) -> f64 {
    match s {
        "Infinity" => f64::INFINITY,
        "-Infinity" => f64::NEG_INFINITY,
        s => s.parse().unwrap(),
    }
}

/// The SDK's value for a vector's typed description.
fn value(desc: &Json) -> Value {
    let Json::Obj(entries) = desc else {
        panic!("a value description is an object: {:?}", desc)
    };
    let (tag, v) = &entries[0];
    match tag.as_str() {
        "nil" => Value::Nil,
        "bool" => Value::Bool(*v == Json::Bool(true)),
        "int" => match v.str().parse::<u64>() {
            Ok(n) => Value::UInt(n),
            Err(_) => Value::Int(v.str().parse().unwrap()),
        },
        "f64" => Value::F64(float(v.str())),
        "f32" => Value::F32(float(v.str()) as f32),
        "str" => Value::Str(v.str().repeat(repeat(desc))),
        "bin" => Value::Bin(unhex(v.str()).repeat(repeat(desc))),
        "array" => {
            let items: Vec<Value> = v.arr().iter().map(value).collect();
            Value::Array(
                std::iter::repeat(items)
                    .take(repeat(desc))
                    .flatten()
                    .collect(),
            )
        }
        "map" => Value::Map(
            v.arr()
                .iter()
                .map(|pair| (value(&pair.arr()[0]), value(&pair.arr()[1])))
                .collect(),
        ),
        other => panic!("unknown value tag {}", other),
    }
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

fn golden() -> Json {
    parse(GOLDEN)
}

#[test]
fn golden_vectors_encode_to_their_bytes() {
    let golden = golden();
    let vectors = golden.get("vectors").unwrap().arr();
    assert!(vectors.len() > 50, "{} vectors", vectors.len());
    let mut checked = 0;
    for v in vectors {
        if v.get("encode") == Some(&Json::Bool(false)) {
            continue;
        }
        let name = v.get("name").unwrap().str();
        let want = bytes(v.get("hex").unwrap());
        let got = encode(&value(v.get("value").unwrap()));
        assert!(
            got == want,
            "{}: encoded {} bytes, not the golden {}",
            name,
            got.len(),
            want.len()
        );
        checked += 1;
    }
    assert!(checked > 50);
}

#[test]
fn golden_vectors_decode_to_their_values() {
    let golden = golden();
    for v in golden.get("vectors").unwrap().arr() {
        let name = v.get("name").unwrap().str();
        let got =
            decode(&bytes(v.get("hex").unwrap())).unwrap_or_else(|e| panic!("{}: {}", name, e));
        assert_eq!(
            normalize(got),
            normalize(value(v.get("value").unwrap())),
            "{}",
            name
        );
    }
}

#[test]
fn golden_invalid_inputs_are_refused() {
    let golden = golden();
    for v in golden.get("invalid").unwrap().arr() {
        let name = v.get("name").unwrap().str();
        assert!(decode(&bytes(v.get("hex").unwrap())).is_err(), "{}", name);
    }
}

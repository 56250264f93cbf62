//! Guest SDK unit tests that run natively on the build machine, so that
//! `cargo test` runs them too: the Go SDK's `go test`, and the C SDK's
//! MessagePack reader and writer against the shared golden vectors
//! (`tests/golden/msgpack.json`) through a native harness
//! (`guest-sdk/c/tests/msgpack_golden.c`). No network: Go runs with
//! `GOPROXY=off`, C needs only the system's `cc`.

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Write as _};
use std::process::{Command, Stdio};

use reef_testkit::golden::{self, Value};
use reef_testkit::workspace_root;

/// The SDK's own unit tests (`go test`: codec incl. the golden vectors,
/// arguments, dispatch, transfer arena).
#[test]
fn go_sdk_unit_tests() {
    let root = workspace_root();
    let go = root.join("target/toolchains/venv/bin/go");
    assert!(
        go.exists(),
        "{} is missing: run guest-sdk/go/install.sh",
        go.display()
    );
    let out = Command::new(go)
        .args(["test", "-count=1", "./..."])
        .current_dir(root.join("guest-sdk/go"))
        .env("GOTOOLCHAIN", "local")
        .env("GOPROXY", "off")
        .env("GOFLAGS", "-mod=mod")
        .env("GOWORK", "off")
        .env("GOCACHE", root.join("target/go/cache"))
        .env("GOPATH", root.join("target/go/path"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "go test failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// The harness's tokens for a value: what the C writer is told to write, or
/// (`read` true) what the C reader must report (it gives every float as a double).
fn tokens(v: &Value, read: bool, out: &mut Vec<String>) {
    match v {
        Value::Nil => out.push("n".into()),
        Value::Bool(b) => out.push(if *b { "t" } else { "f" }.into()),
        Value::Int(n) if *n >= 0 => out.push(format!("u:{n}")),
        Value::Int(n) => out.push(format!("i:{n}")),
        Value::F64(x) => out.push(format!("d:{:016x}", x.to_bits())),
        Value::F32(x) if read => out.push(format!("d:{:016x}", (*x as f64).to_bits())),
        Value::F32(x) => out.push(format!("g:{:08x}", x.to_bits())),
        Value::Str(s) => out.push(format!("s:{}", hex(s.as_bytes()))),
        Value::Bin(b) => out.push(format!("b:{}", hex(b))),
        Value::Array(items) => {
            out.push(format!("a:{}", items.len()));
            for item in items {
                tokens(item, read, out);
            }
        }
        Value::Map(pairs) => {
            out.push(format!("m:{}", pairs.len()));
            for (k, x) in pairs {
                tokens(k, read, out);
                tokens(x, read, out);
            }
        }
    }
}

#[test]
fn c_sdk_msgpack_matches_the_golden_vectors() {
    let root = workspace_root();
    let sdk = root.join("guest-sdk/c");
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("msgpack_golden");
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let built = Command::new(&cc)
        .args([
            "-O1",
            "-std=c11",
            "-D_GNU_SOURCE",
            "-Wall",
            "-Werror",
            "-Wno-attributes",
        ])
        .arg("-I")
        .arg(sdk.join("include"))
        .arg("-I")
        .arg(sdk.join("src"))
        .arg(sdk.join("src/msgpack.c"))
        .arg(sdk.join("tests/msgpack_golden.c"))
        .arg("-o")
        .arg(&bin)
        .output()
        .unwrap_or_else(|e| panic!("running {cc}: {e}"));
    assert!(
        built.status.success(),
        "compiling the C harness:\n{}",
        String::from_utf8_lossy(&built.stderr)
    );
    let mut harness = Command::new(&bin)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = harness.stdin.take().unwrap();
    let mut answers = BufReader::new(harness.stdout.take().unwrap()).lines();
    let mut ask = |request: String| -> String {
        writeln!(stdin, "{request}").unwrap();
        answers.next().expect("an answer").unwrap()
    };
    let golden = golden::msgpack();
    let mut encoded = 0;
    for v in &golden.vectors {
        let mut read = Vec::new();
        tokens(&v.value, true, &mut read);
        assert_eq!(
            ask(format!("D {}", hex(&v.bytes))),
            read.join(" "),
            "{}: decoded",
            v.name
        );
        if v.encode {
            let mut write = Vec::new();
            tokens(&v.value, false, &mut write);
            let got = ask(format!("E {}", write.join(" ")));
            assert!(got == hex(&v.bytes), "{}: encoded {got:.80}", v.name);
            encoded += 1;
        }
    }
    assert!(encoded > 50, "{encoded} vectors encoded");
    for (name, bytes) in &golden.invalid {
        let got = ask(format!("D {}", hex(bytes)));
        assert!(got.starts_with("ERR "), "{name}: decoded as {got}");
    }
    drop(stdin);
    assert!(harness.wait().unwrap().success());
}

//! The canonical-ABI layouts of `wit/reef.wit` on wasm32, computed with
//! `wit-parser`, must equal `tests/golden/abi-layouts.json`: the golden file
//! the hand-written guest SDKs (Rust, C, Go) check their offsets against and
//! every SDK checks its error-code table against. A change to the WIT fails
//! here until the golden file is regenerated (`REEF_BLESS=1 cargo test
//! --release -p reef-host --test abi_layouts`), and then fails in every SDK
//! whose constants do not follow.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use serde_json::Value;
use wit_parser::{Int, Resolve, SizeAlign, Type, TypeDefKind, TypeOwner};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Every layout fact an SDK relies on, as flat `name: value` pairs:
/// `size.T` and `align.T` of each named type T, `offset.R.f` of each record
/// field, `payload.V` and `case.V.c` (its index) of each variant, `case.E.c`
/// of each enum; and `size.`, `align.`, `payload.` of each function's result
/// type, named `interface.function.result`.
fn layouts() -> BTreeMap<String, Value> {
    let mut resolve = Resolve::default();
    let pkg = resolve
        .push_file(repo().join("wit/reef.wit"))
        .expect("wit/reef.wit parses");
    let mut sizes = SizeAlign::default();
    sizes.fill(&resolve);
    let mut out = BTreeMap::new();
    out.insert(
        "package".to_string(),
        Value::from(resolve.packages[pkg].name.to_string()),
    );
    let mut put = |key: String, n: usize| {
        out.insert(key, Value::from(n));
    };

    for (id, def) in resolve.types.iter() {
        let (TypeOwner::Interface(_), Some(name)) = (def.owner, &def.name) else {
            continue;
        };
        // `use`d copies in other interfaces are aliases of the original.
        if matches!(def.kind, TypeDefKind::Type(_)) {
            continue;
        }
        let ty = Type::Id(id);
        put(format!("size.{name}"), sizes.size(&ty).size_wasm32());
        put(format!("align.{name}"), sizes.align(&ty).align_wasm32());
        match &def.kind {
            TypeDefKind::Record(r) => {
                let offsets = sizes.field_offsets(r.fields.iter().map(|f| &f.ty));
                for (field, (offset, _)) in r.fields.iter().zip(offsets) {
                    put(
                        format!("offset.{name}.{}", field.name),
                        offset.size_wasm32(),
                    );
                }
            }
            TypeDefKind::Variant(v) => {
                let cases = v.cases.iter().map(|c| c.ty.as_ref());
                let payload = sizes.payload_offset(v.tag(), cases);
                put(format!("payload.{name}"), payload.size_wasm32());
                for (i, case) in v.cases.iter().enumerate() {
                    put(format!("case.{name}.{}", case.name), i);
                }
            }
            TypeDefKind::Enum(e) => {
                for (i, case) in e.cases.iter().enumerate() {
                    put(format!("case.{name}.{}", case.name), i);
                }
            }
            _ => {}
        }
    }

    for (_, iface) in resolve.interfaces.iter() {
        let Some(iface_name) = &iface.name else {
            continue;
        };
        for (fname, func) in &iface.functions {
            let Some(ty) = func.result else { continue };
            let key = format!("{iface_name}.{fname}.result");
            put(format!("size.{key}"), sizes.size(&ty).size_wasm32());
            put(format!("align.{key}"), sizes.align(&ty).align_wasm32());
            if let Type::Id(id) = ty {
                if let TypeDefKind::Result(r) = &resolve.types[id].kind {
                    let cases = [r.ok.as_ref(), r.err.as_ref()];
                    let payload = sizes.payload_offset(Int::U8, cases);
                    put(format!("payload.{key}"), payload.size_wasm32());
                }
            }
        }
    }
    out
}

#[test]
fn golden_abi_layouts_match_the_wit() {
    let path = repo().join("tests/golden/abi-layouts.json");
    let computed = layouts();
    let text = serde_json::to_string_pretty(&computed).unwrap() + "\n";
    if std::env::var_os("REEF_BLESS").is_some() {
        std::fs::write(&path, &text).unwrap();
        return;
    }
    let golden: BTreeMap<String, Value> =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let keys: BTreeSet<&String> = computed.keys().chain(golden.keys()).collect();
    let differ: Vec<String> = keys
        .into_iter()
        .filter(|k| computed.get(*k) != golden.get(*k))
        .map(|k| format!("{k}: wit {:?}, golden {:?}", computed.get(k), golden.get(k)))
        .collect();
    assert!(
        differ.is_empty(),
        "wit/reef.wit and {} disagree; update every guest SDK's layouts, then \
         regenerate the file with REEF_BLESS=1:\n{}",
        path.display(),
        differ.join("\n")
    );
}

#[test]
fn the_failure_layout_is_the_canonical_one() {
    // Worked by hand from the canonical ABI, so a wrong generator shows too.
    let l = layouts();
    let n = |k: &str| l[k].as_u64().unwrap_or_else(|| panic!("{k}"));
    assert_eq!((n("size.failure"), n("align.failure")), (12, 4));
    assert_eq!(
        (n("offset.failure.code"), n("offset.failure.message")),
        (0, 4)
    );
    assert_eq!((n("size.object-ref"), n("offset.object-ref.size")), (16, 8));
    assert_eq!(n("case.code.invalid-module"), 0);
    let result = |f: &str| {
        (
            n(&format!("size.{f}.result")),
            n(&format!("payload.{f}.result")),
        )
    };
    assert_eq!(result("host.get"), (16, 4));
    assert_eq!(result("host.object-size"), (24, 8));
    assert_eq!(result("guest.run-task"), (24, 8));
    assert_eq!(result("guest.actor-init"), (16, 4));
}

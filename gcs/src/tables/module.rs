//! Registered Wasm component modules, addressed by content hash.

use serde::{Deserialize, Serialize};

use super::{Record, Table};

/// An actor class a module exports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActorClassInfo {
    pub name: String,
    pub methods: Vec<String>,
}

/// Metadata about one uploaded component (the bytes live elsewhere).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModuleRecord {
    /// Hex content hash; the module's identity.
    pub hash: String,
    pub size_bytes: u64,
    /// SDK name/version that built the component.
    pub sdk: String,
    /// Exported task (free function) names.
    pub tasks: Vec<String>,
    pub actors: Vec<ActorClassInfo>,
    /// Unix millis of first registration.
    pub registered_at_ms: u64,
}

impl ModuleRecord {
    /// The actor class called `name`, if the module exports it.
    pub fn actor_class(&self, name: &str) -> Option<&ActorClassInfo> {
        self.actors.iter().find(|a| a.name == name)
    }
}

impl Record for ModuleRecord {
    const TABLE: &'static str = "modules";
    const WHAT: &'static str = "module";
    type Key = str;

    fn encode_key(key: &str) -> Vec<u8> {
        key.as_bytes().to_vec()
    }

    fn storage_key(&self) -> Vec<u8> {
        Self::encode_key(&self.hash)
    }
}

/// Modules keyed by content hash.
pub type ModuleTable = Table<ModuleRecord>;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::on_both_stores;

    #[test]
    fn roundtrip() {
        on_both_stores(|store| {
            let table = ModuleTable::new(store);
            let module = ModuleRecord {
                hash: "ab12".into(),
                size_bytes: 4096,
                sdk: "reef-rust/0.1".into(),
                tasks: vec!["add".into(), "mul".into()],
                actors: vec![ActorClassInfo {
                    name: "Counter".into(),
                    methods: vec!["incr".into(), "get".into()],
                }],
                registered_at_ms: 1_700_000_000_000,
            };
            table.put(&module).unwrap();
            let got = table.require("ab12").unwrap();
            assert_eq!(got, module);
            assert_eq!(got.actor_class("Counter").unwrap().methods.len(), 2);
            assert!(got.actor_class("Nope").is_none());
            assert_eq!(table.all().unwrap(), vec![module]);
            assert!(table.delete("ab12").unwrap());
            assert_eq!(table.get("ab12").unwrap(), None);
        });
    }
}

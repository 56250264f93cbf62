//! What a module may reach outside its sandbox: the capabilities granted at
//! registration, and the imports that need them.
//!
//! A module is registered with a set of grants (none by default). A
//! component whose top-level imports name an interface of a capability it
//! was not granted is refused at registration with every such import listed;
//! the linker a module is instantiated with links only the granted
//! interfaces, so an ungranted import can never be satisfied either.
//!
//! Grants are part of a module's identity: the node appends them to the
//! bytes as a `reef:grants` custom section before hashing (see [`seal`]), so
//! the same bytes registered with and without grants are two modules with
//! two hashes, two compiled artifacts and two records in the control plane,
//! and a task submitted against one never runs with the other's grants.

use std::fmt;

use crate::error::{ErrorCode, ReefError, ReefResult};

/// The custom section holding a module's grants. Only the node writes it.
pub const GRANTS_SECTION: &str = "reef:grants";

/// A capability a registration may grant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Capability {
    /// `wasi:filesystem/*`: linked, with the module's scratch directory preopened.
    Filesystem,
    /// `wasi:sockets/*` (and `wasi:http/*`): sockets may connect and bind anywhere.
    Network,
}

impl Capability {
    pub const ALL: [Capability; 2] = [Capability::Filesystem, Capability::Network];

    pub fn name(self) -> &'static str {
        match self {
            Capability::Filesystem => "filesystem",
            Capability::Network => "network",
        }
    }

    /// The import-name prefixes (WASI packages) this capability covers.
    pub fn interfaces(self) -> &'static [&'static str] {
        match self {
            Capability::Filesystem => &["wasi:filesystem/"],
            Capability::Network => &["wasi:sockets/", "wasi:http/"],
        }
    }

    pub fn parse(name: &str) -> ReefResult<Capability> {
        Capability::ALL
            .into_iter()
            .find(|c| c.name() == name.trim())
            .ok_or_else(|| {
                ReefError::new(
                    ErrorCode::BadArgument,
                    format!("unknown grant `{name}` (grants are: filesystem, network)"),
                )
            })
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The capability an import needs, if any (`None`: every guest may import it).
pub fn capability_of(import: &str) -> Option<Capability> {
    Capability::ALL
        .into_iter()
        .find(|c| c.interfaces().iter().any(|p| import.starts_with(p)))
}

/// The capabilities one module was granted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Grants {
    pub filesystem: bool,
    pub network: bool,
}

impl Grants {
    pub const NONE: Grants = Grants {
        filesystem: false,
        network: false,
    };

    /// Parses grant names as a registration carries them (`["filesystem"]`).
    pub fn parse<S: AsRef<str>>(names: &[S]) -> ReefResult<Grants> {
        let mut grants = Grants::NONE;
        for name in names {
            grants.add(Capability::parse(name.as_ref())?);
        }
        Ok(grants)
    }

    pub fn add(&mut self, c: Capability) {
        match c {
            Capability::Filesystem => self.filesystem = true,
            Capability::Network => self.network = true,
        }
    }

    pub fn has(&self, c: Capability) -> bool {
        match c {
            Capability::Filesystem => self.filesystem,
            Capability::Network => self.network,
        }
    }

    pub fn is_empty(&self) -> bool {
        *self == Grants::NONE
    }

    /// The granted capabilities' names, in a fixed order.
    pub fn names(&self) -> Vec<&'static str> {
        Capability::ALL
            .into_iter()
            .filter(|c| self.has(*c))
            .map(Capability::name)
            .collect()
    }
}

impl fmt::Display for Grants {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            f.write_str("none")
        } else {
            f.write_str(&self.names().join(", "))
        }
    }
}

/// The top-level import names of a component (nested components' and core
/// modules' imports are satisfied inside it).
pub fn component_imports(component: &[u8]) -> Vec<String> {
    let mut names = Vec::new();
    let mut depth = 0u32;
    for payload in wasmparser::Parser::new(0).parse_all(component) {
        match payload {
            Ok(wasmparser::Payload::ModuleSection { .. })
            | Ok(wasmparser::Payload::ComponentSection { .. }) => depth += 1,
            Ok(wasmparser::Payload::End(_)) => depth = depth.saturating_sub(1),
            Ok(wasmparser::Payload::ComponentImportSection(reader)) if depth == 0 => {
                names.extend(
                    reader
                        .into_iter()
                        .flatten()
                        .map(|i| i.name.name.to_string()),
                );
            }
            _ => {}
        }
    }
    names
}

/// The imports of a component that need a capability it was not granted.
pub fn denied_imports(component: &[u8], grants: Grants) -> Vec<(String, Capability)> {
    component_imports(component)
        .into_iter()
        .filter_map(|name| match capability_of(&name) {
            Some(c) if !grants.has(c) => Some((name, c)),
            _ => None,
        })
        .collect()
}

/// The error for a component with denied imports: lists every one and says
/// how to grant what it needs (or build without it).
pub fn refusal(denied: &[(String, Capability)], grants: Grants) -> ReefError {
    let mut needed: Vec<Capability> = denied.iter().map(|(_, c)| *c).collect();
    needed.sort();
    needed.dedup();
    let needed: Vec<&str> = needed.into_iter().map(Capability::name).collect();
    let imports: Vec<&str> = denied.iter().map(|(n, _)| n.as_str()).collect();
    ReefError::new(
        ErrorCode::NotGranted,
        format!(
            "the component imports interfaces it was not granted (granted: {grants}): {}. \
             Register it with the grant{} {} (host register --grant {}; \
             the drivers' register options take `grants`), or build it without these \
             imports (host build strip-imports; see docs/architecture.md#grants)",
            imports.join(", "),
            if needed.len() > 1 { "s" } else { "" },
            needed.join(" and "),
            needed.join(" --grant "),
        ),
    )
}

/// Reads the grants a module's bytes carry (`Grants::NONE` without the section).
pub fn read_sealed(wasm: &[u8]) -> ReefResult<Option<Grants>> {
    let mut depth = 0u32;
    for payload in wasmparser::Parser::new(0).parse_all(wasm) {
        match payload {
            Ok(wasmparser::Payload::ModuleSection { .. })
            | Ok(wasmparser::Payload::ComponentSection { .. }) => depth += 1,
            Ok(wasmparser::Payload::End(_)) => depth = depth.saturating_sub(1),
            Ok(wasmparser::Payload::CustomSection(c))
                if depth == 0 && c.name() == GRANTS_SECTION =>
            {
                let text = std::str::from_utf8(c.data()).map_err(|_| {
                    ReefError::new(
                        ErrorCode::InvalidModule,
                        format!("the `{GRANTS_SECTION}` section is not UTF-8"),
                    )
                })?;
                let names: Vec<&str> = text.split(',').filter(|s| !s.is_empty()).collect();
                return Grants::parse(&names).map(Some);
            }
            // Malformed bytes are reported by validation later.
            Err(_) => return Ok(None),
            _ => {}
        }
    }
    Ok(None)
}

/// The bytes of a module registered with `grants`: the module as given, with
/// its grants appended as a custom section (valid at the end of a core module
/// or a component). Without grants the bytes are unchanged.
pub fn seal(mut wasm: Vec<u8>, grants: Grants) -> Vec<u8> {
    if grants.is_empty() {
        return wasm;
    }
    let payload = grants.names().join(",");
    let mut body = Vec::new();
    leb128(&mut body, GRANTS_SECTION.len() as u64);
    body.extend_from_slice(GRANTS_SECTION.as_bytes());
    body.extend_from_slice(payload.as_bytes());
    wasm.push(0); // custom section id
    leb128(&mut wasm, body.len() as u64);
    wasm.extend_from_slice(&body);
    wasm
}

fn leb128(out: &mut Vec<u8>, mut v: u64) {
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn component_importing(names: &[&str]) -> Vec<u8> {
        let imports: String = names
            .iter()
            .map(|n| format!("(import \"{n}\" (instance))\n"))
            .collect();
        // A nested component's imports are satisfied inside: never counted.
        let text = format!(
            "(component {imports}
               (component $inner (import \"wasi:filesystem/types@0.2.0\" (instance)))
             )"
        );
        wat::parse_str(&text).unwrap()
    }

    #[test]
    fn imports_are_classified_by_capability() {
        assert_eq!(
            capability_of("wasi:filesystem/types@0.2.9"),
            Some(Capability::Filesystem)
        );
        assert_eq!(
            capability_of("wasi:filesystem/preopens@0.2.0"),
            Some(Capability::Filesystem)
        );
        assert_eq!(
            capability_of("wasi:sockets/tcp@0.2.3"),
            Some(Capability::Network)
        );
        assert_eq!(
            capability_of("wasi:http/outgoing-handler@0.2.0"),
            Some(Capability::Network)
        );
        for free in [
            "wasi:io/streams@0.2.9",
            "wasi:cli/stdout@0.2.0",
            "wasi:clocks/wall-clock@0.2.0",
            "wasi:random/random@0.2.0",
            "reef:runtime/host@0.2.0",
            // Not a prefix match on the package name alone.
            "wasi:filesystemx/types@0.2.0",
        ] {
            assert_eq!(capability_of(free), None, "{free}");
        }
    }

    #[test]
    fn denied_imports_depend_on_the_grants() {
        let c = component_importing(&[
            "wasi:io/streams@0.2.9",
            "wasi:filesystem/types@0.2.9",
            "wasi:filesystem/preopens@0.2.9",
            "wasi:sockets/tcp@0.2.9",
        ]);
        let names = |g: Grants| -> Vec<String> {
            denied_imports(&c, g).into_iter().map(|(n, _)| n).collect()
        };
        assert_eq!(
            names(Grants::NONE),
            [
                "wasi:filesystem/types@0.2.9",
                "wasi:filesystem/preopens@0.2.9",
                "wasi:sockets/tcp@0.2.9"
            ]
        );
        let fs = Grants::parse(&["filesystem"]).unwrap();
        assert_eq!(names(fs), ["wasi:sockets/tcp@0.2.9"]);
        let all = Grants::parse(&["network", "filesystem"]).unwrap();
        assert!(names(all).is_empty());
        let message = refusal(&denied_imports(&c, Grants::NONE), Grants::NONE).message;
        assert!(
            message.contains("wasi:filesystem/preopens@0.2.9"),
            "{message}"
        );
        assert!(
            message.contains("--grant filesystem --grant network"),
            "{message}"
        );
    }

    #[test]
    fn unknown_grants_are_refused() {
        let err = Grants::parse(&["filesystem", "gpu"]).unwrap_err();
        assert_eq!(err.code, ErrorCode::BadArgument);
        assert!(err.message.contains("gpu"), "{}", err.message);
    }

    #[test]
    fn sealed_grants_round_trip_and_keep_the_module_valid() {
        let core = wat::parse_str("(module (func (export \"f\")))").unwrap();
        assert_eq!(seal(core.clone(), Grants::NONE), core);
        assert_eq!(read_sealed(&core).unwrap(), None);
        let grants = Grants::parse(&["network"]).unwrap();
        let sealed = seal(core.clone(), grants);
        assert_ne!(sealed, core);
        wasmparser::Validator::new().validate_all(&sealed).unwrap();
        assert_eq!(read_sealed(&sealed).unwrap(), Some(grants));
        let component = component_importing(&["wasi:sockets/tcp@0.2.9"]);
        let sealed = seal(
            component,
            Grants::parse(&["filesystem", "network"]).unwrap(),
        );
        wasmparser::Validator::new().validate_all(&sealed).unwrap();
        assert_eq!(
            read_sealed(&sealed).unwrap().unwrap().names(),
            ["filesystem", "network"]
        );
    }
}

//! Rust mirrors of the WIT types in `wit/reef.wit` (lifted and lowered by
//! wasmtime's component derives; instantiation type-checks them against the
//! guest).

use wasmtime::component::{ComponentType, Lift, Lower};

use crate::error::{ErrorCode, ReefError};

/// The WIT interface names, with the contract's version.
pub const WIT_VERSION: &str = "0.2.0";
pub const HOST_INTERFACE: &str = "reef:runtime/host@0.2.0";
pub const GUEST_INTERFACE: &str = "reef:runtime/guest@0.2.0";

#[derive(ComponentType, Lift, Lower, Clone, Copy, Debug)]
#[component(record)]
pub struct ObjectRef {
    pub id: u64,
    pub size: u64,
}

#[derive(ComponentType, Lift, Lower, Clone, Debug)]
#[component(variant)]
pub enum Arg {
    #[component(name = "inline")]
    Inline(Vec<u8>),
    #[component(name = "object")]
    Object(ObjectRef),
}

#[derive(ComponentType, Lift, Lower, Clone, Debug)]
#[component(variant)]
pub enum Output {
    #[component(name = "bytes")]
    Bytes(Vec<u8>),
    #[component(name = "object")]
    Object(u64),
}

#[derive(ComponentType, Lift, Lower, Clone, Debug)]
#[component(record)]
pub struct ActorClass {
    pub name: String,
    pub methods: Vec<String>,
}

#[derive(ComponentType, Lift, Lower, Clone, Debug)]
#[component(record)]
pub struct ModuleInfo {
    pub sdk: String,
    pub tasks: Vec<String>,
    pub actors: Vec<ActorClass>,
}

#[derive(ComponentType, Lift, Lower, Clone, Copy, Debug)]
#[component(enum)]
#[repr(u8)]
pub enum LogLevel {
    #[component(name = "trace")]
    Trace,
    #[component(name = "debug")]
    Debug,
    #[component(name = "info")]
    Info,
    #[component(name = "warn")]
    Warn,
    #[component(name = "error")]
    Error,
}

/// The WIT `code` enum. This and the two conversions below are the one place
/// where the codes a guest raises or receives meet the driver API's
/// `ErrorCode`: same names (kebab-case in WIT), same order, every code but
/// `ERROR_CODE_UNSPECIFIED` (a guest reading the result of a failed task gets
/// that task's error, whatever its code).
#[derive(ComponentType, Lift, Lower, Clone, Copy, Debug, PartialEq, Eq)]
#[component(enum)]
#[repr(u8)]
pub enum Code {
    #[component(name = "invalid-module")]
    InvalidModule,
    #[component(name = "unknown-module")]
    UnknownModule,
    #[component(name = "unknown-function")]
    UnknownFunction,
    #[component(name = "bad-argument")]
    BadArgument,
    #[component(name = "unknown-object")]
    UnknownObject,
    #[component(name = "guest-trap")]
    GuestTrap,
    #[component(name = "guest-panic")]
    GuestPanic,
    #[component(name = "guest-error")]
    GuestError,
    #[component(name = "memory-limit")]
    MemoryLimit,
    #[component(name = "cpu-time-limit")]
    CpuTimeLimit,
    #[component(name = "stack-overflow")]
    StackOverflow,
    #[component(name = "cancelled")]
    Cancelled,
    #[component(name = "timeout")]
    Timeout,
    #[component(name = "store-full")]
    StoreFull,
    #[component(name = "infeasible")]
    Infeasible,
    #[component(name = "dependency-failed")]
    DependencyFailed,
    #[component(name = "unknown-actor")]
    UnknownActor,
    #[component(name = "actor-dead")]
    ActorDead,
    #[component(name = "name-taken")]
    NameTaken,
    #[component(name = "node-stopping")]
    NodeStopping,
    #[component(name = "owner-died")]
    OwnerDied,
    #[component(name = "view-error")]
    ViewError,
    #[component(name = "internal")]
    Internal,
    #[component(name = "unauthenticated")]
    Unauthenticated,
    #[component(name = "node-died")]
    NodeDied,
    #[component(name = "unknown-node")]
    UnknownNode,
    #[component(name = "unknown-placement-group")]
    UnknownPlacementGroup,
    #[component(name = "object-lost")]
    ObjectLost,
    #[component(name = "not-granted")]
    NotGranted,
    #[component(name = "placement-group-removed")]
    PlacementGroupRemoved,
}

impl From<Code> for ErrorCode {
    fn from(code: Code) -> ErrorCode {
        match code {
            Code::InvalidModule => ErrorCode::InvalidModule,
            Code::UnknownModule => ErrorCode::UnknownModule,
            Code::UnknownFunction => ErrorCode::UnknownFunction,
            Code::BadArgument => ErrorCode::BadArgument,
            Code::UnknownObject => ErrorCode::UnknownObject,
            Code::GuestTrap => ErrorCode::GuestTrap,
            Code::GuestPanic => ErrorCode::GuestPanic,
            Code::GuestError => ErrorCode::GuestError,
            Code::MemoryLimit => ErrorCode::MemoryLimit,
            Code::CpuTimeLimit => ErrorCode::CpuTimeLimit,
            Code::StackOverflow => ErrorCode::StackOverflow,
            Code::Cancelled => ErrorCode::Cancelled,
            Code::Timeout => ErrorCode::Timeout,
            Code::StoreFull => ErrorCode::StoreFull,
            Code::Infeasible => ErrorCode::Infeasible,
            Code::DependencyFailed => ErrorCode::DependencyFailed,
            Code::UnknownActor => ErrorCode::UnknownActor,
            Code::ActorDead => ErrorCode::ActorDead,
            Code::NameTaken => ErrorCode::NameTaken,
            Code::NodeStopping => ErrorCode::NodeStopping,
            Code::OwnerDied => ErrorCode::OwnerDied,
            Code::ViewError => ErrorCode::ViewError,
            Code::Internal => ErrorCode::Internal,
            Code::Unauthenticated => ErrorCode::Unauthenticated,
            Code::NodeDied => ErrorCode::NodeDied,
            Code::UnknownNode => ErrorCode::UnknownNode,
            Code::UnknownPlacementGroup => ErrorCode::UnknownPlacementGroup,
            Code::ObjectLost => ErrorCode::ObjectLost,
            Code::NotGranted => ErrorCode::NotGranted,
            Code::PlacementGroupRemoved => ErrorCode::PlacementGroupRemoved,
        }
    }
}

impl From<ErrorCode> for Code {
    fn from(code: ErrorCode) -> Code {
        match code {
            ErrorCode::InvalidModule => Code::InvalidModule,
            ErrorCode::UnknownModule => Code::UnknownModule,
            ErrorCode::UnknownFunction => Code::UnknownFunction,
            ErrorCode::BadArgument => Code::BadArgument,
            ErrorCode::UnknownObject => Code::UnknownObject,
            ErrorCode::GuestTrap => Code::GuestTrap,
            ErrorCode::GuestPanic => Code::GuestPanic,
            ErrorCode::GuestError => Code::GuestError,
            ErrorCode::MemoryLimit => Code::MemoryLimit,
            ErrorCode::CpuTimeLimit => Code::CpuTimeLimit,
            ErrorCode::StackOverflow => Code::StackOverflow,
            ErrorCode::Cancelled => Code::Cancelled,
            ErrorCode::Timeout => Code::Timeout,
            ErrorCode::StoreFull => Code::StoreFull,
            ErrorCode::Infeasible => Code::Infeasible,
            ErrorCode::DependencyFailed => Code::DependencyFailed,
            ErrorCode::UnknownActor => Code::UnknownActor,
            ErrorCode::ActorDead => Code::ActorDead,
            ErrorCode::NameTaken => Code::NameTaken,
            ErrorCode::NodeStopping => Code::NodeStopping,
            ErrorCode::OwnerDied => Code::OwnerDied,
            ErrorCode::ViewError => Code::ViewError,
            ErrorCode::Internal => Code::Internal,
            ErrorCode::Unauthenticated => Code::Unauthenticated,
            ErrorCode::NodeDied => Code::NodeDied,
            ErrorCode::UnknownNode => Code::UnknownNode,
            ErrorCode::UnknownPlacementGroup => Code::UnknownPlacementGroup,
            ErrorCode::ObjectLost => Code::ObjectLost,
            ErrorCode::NotGranted => Code::NotGranted,
            ErrorCode::PlacementGroupRemoved => Code::PlacementGroupRemoved,
            // Codes newer than the WIT enum reach guests as the nearest
            // code they know (the message still names the cause).
            ErrorCode::ActorRestarting => Code::ActorDead,
            ErrorCode::PermissionDenied => Code::NotGranted,
            ErrorCode::QuotaExceeded => Code::Infeasible,
            // Never set on an error that exists; say so rather than guess.
            ErrorCode::Unspecified => Code::Internal,
        }
    }
}

/// The WIT `failure` record: how an error crosses the boundary, either way.
#[derive(ComponentType, Lift, Lower, Clone, Debug)]
#[component(record)]
pub struct Failure {
    pub code: Code,
    pub message: String,
}

impl From<ReefError> for Failure {
    fn from(e: ReefError) -> Failure {
        Failure {
            code: e.code.into(),
            message: e.message,
        }
    }
}

impl From<Failure> for ReefError {
    fn from(f: Failure) -> ReefError {
        ReefError::new(f.code.into(), f.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wit_parser::{Resolve, TypeDefKind};

    /// The WIT `code` cases, in order.
    fn wit_codes() -> Vec<String> {
        let mut resolve = Resolve::default();
        resolve
            .push_str("reef.wit", include_str!("../../../wit/reef.wit"))
            .unwrap();
        let code = resolve
            .types
            .iter()
            .find(|(_, t)| t.name.as_deref() == Some("code"))
            .expect("wit/reef.wit defines `code`");
        match &code.1.kind {
            TypeDefKind::Enum(e) => e.cases.iter().map(|c| c.name.clone()).collect(),
            other => panic!("`code` is not an enum: {other:?}"),
        }
    }

    /// The proto codes guests cannot see (newer than `reef:runtime@0.2.0`,
    /// whose enum existing guests are built against), and the WIT code each
    /// reaches them as.
    const NEWER_THAN_WIT: [(ErrorCode, Code); 3] = [
        (ErrorCode::ActorRestarting, Code::ActorDead),
        (ErrorCode::PermissionDenied, Code::NotGranted),
        (ErrorCode::QuotaExceeded, Code::Infeasible),
    ];

    #[test]
    fn wit_codes_are_the_proto_codes_in_order() {
        let wit = wit_codes();
        let proto: Vec<String> = (1..)
            .map_while(|n| ErrorCode::try_from(n).ok())
            .map(|c| c.as_str_name().to_lowercase().replace('_', "-"))
            .collect();
        assert_eq!(wit, proto[..wit.len()]);
        assert_eq!(proto.len(), wit.len() + NEWER_THAN_WIT.len());
        for (proto, wit) in NEWER_THAN_WIT {
            assert_eq!(Code::from(proto), wit);
        }
    }

    #[test]
    fn codes_convert_both_ways_with_the_wit_discriminant() {
        for (i, _) in wit_codes().iter().enumerate() {
            let proto = ErrorCode::try_from(i as i32 + 1).unwrap();
            let code = Code::from(proto);
            assert_eq!(code as u8 as usize, i, "{proto:?}");
            assert_eq!(ErrorCode::from(code), proto);
        }
        assert_eq!(Code::from(ErrorCode::Unspecified), Code::Internal);
    }
}

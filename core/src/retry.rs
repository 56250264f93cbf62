//! Task retries: how often a task runs again after a failed attempt, and on
//! which guest failures (`max_retries`, `retry_exceptions` of `CallOptions`).
//!
//! The node decides which failures allow a retry at all (see
//! [`RetryPolicy::allows`]): a failure of the node (it died, it is stopping,
//! the host failed) always does; a failure of the guest's own code only when
//! `retry_exceptions` lists it; a stopped task (cancelled, its driver gone,
//! its placement group removed) never.

use reef_proto as pb;

use crate::ErrorCode;

/// Retries of a task unless it says otherwise (as in Ray).
pub const DEFAULT_MAX_RETRIES: u32 = 3;

/// The guest failures a task is retried on.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum RetryExceptions {
    /// None: a guest failure fails the task at once.
    #[default]
    None,
    /// Every failure of the guest's code: `GUEST_ERROR`, `GUEST_PANIC`, `GUEST_TRAP`.
    All,
    /// Failures with these codes.
    Codes(Vec<ErrorCode>),
}

/// The codes a guest's own failure carries (what [`RetryExceptions::All`] retries).
pub const GUEST_FAILURES: [ErrorCode; 3] = [
    ErrorCode::GuestError,
    ErrorCode::GuestPanic,
    ErrorCode::GuestTrap,
];

/// Failures of the node rather than of the task: retried whatever
/// `retry_exceptions` says. `INTERNAL` is a host failure (an instance that
/// could not be made, a guest thread that stopped), never the guest's.
pub const NODE_FAILURES: [ErrorCode; 3] = [
    ErrorCode::NodeDied,
    ErrorCode::NodeStopping,
    ErrorCode::Internal,
];

/// A stopped task ends: these are never retried, even when listed.
pub const NEVER_RETRIED: [ErrorCode; 3] = [
    ErrorCode::Cancelled,
    ErrorCode::OwnerDied,
    ErrorCode::PlacementGroupRemoved,
];

/// A task's retry options.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt; `None`: [`DEFAULT_MAX_RETRIES`].
    pub max_retries: Option<u32>,
    pub exceptions: RetryExceptions,
}

impl RetryPolicy {
    pub fn max_retries(&self) -> u32 {
        self.max_retries.unwrap_or(DEFAULT_MAX_RETRIES)
    }

    /// Whether a failure with `code` is one a retry may fix (attempts left
    /// or not).
    pub fn allows(&self, code: ErrorCode) -> bool {
        if NEVER_RETRIED.contains(&code) {
            return false;
        }
        if NODE_FAILURES.contains(&code) {
            return true;
        }
        match &self.exceptions {
            RetryExceptions::None => false,
            RetryExceptions::All => GUEST_FAILURES.contains(&code),
            RetryExceptions::Codes(codes) => codes.contains(&code),
        }
    }

    /// Whether attempt `attempt` (1: the first), failed with `code`, is
    /// followed by another.
    pub fn retries(&self, attempt: u32, code: ErrorCode) -> bool {
        self.allows(code) && attempt <= self.max_retries()
    }

    /// The policy of a `CallOptions` on the wire.
    pub fn from_proto(o: &pb::CallOptions) -> RetryPolicy {
        let exceptions = match &o.retry_exceptions {
            None => RetryExceptions::None,
            Some(e) if e.all => RetryExceptions::All,
            Some(e) if e.codes.is_empty() => RetryExceptions::None,
            Some(e) => RetryExceptions::Codes(
                e.codes
                    .iter()
                    .filter_map(|c| ErrorCode::try_from(*c).ok())
                    .collect(),
            ),
        };
        RetryPolicy {
            max_retries: o.max_retries,
            exceptions,
        }
    }

    /// Writes the policy into a `CallOptions` on the wire.
    pub fn write_proto(&self, o: &mut pb::CallOptions) {
        o.max_retries = self.max_retries;
        o.retry_exceptions = match &self.exceptions {
            RetryExceptions::None => None,
            RetryExceptions::All => Some(pb::RetryExceptions {
                all: true,
                codes: Vec::new(),
            }),
            RetryExceptions::Codes(codes) => Some(pb::RetryExceptions {
                all: false,
                codes: codes.iter().map(|c| *c as i32).collect(),
            }),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_failures_retry_by_default_guest_failures_do_not() {
        let p = RetryPolicy::default();
        assert_eq!(p.max_retries(), 3);
        assert!(p.retries(1, ErrorCode::NodeDied));
        assert!(p.retries(4 - 1, ErrorCode::NodeStopping));
        assert!(!p.retries(4, ErrorCode::NodeDied), "4 attempts in all");
        assert!(!p.retries(1, ErrorCode::GuestError));
        assert!(!p.retries(1, ErrorCode::MemoryLimit));
        assert!(!p.retries(1, ErrorCode::Cancelled));
    }

    #[test]
    fn retry_exceptions_choose_guest_failures() {
        let all = RetryPolicy {
            max_retries: Some(1),
            exceptions: RetryExceptions::All,
        };
        assert!(all.retries(1, ErrorCode::GuestPanic));
        assert!(!all.retries(2, ErrorCode::GuestPanic));
        assert!(!all.retries(1, ErrorCode::CpuTimeLimit));
        let listed = RetryPolicy {
            max_retries: None,
            exceptions: RetryExceptions::Codes(vec![ErrorCode::CpuTimeLimit, ErrorCode::OwnerDied]),
        };
        assert!(listed.retries(1, ErrorCode::CpuTimeLimit));
        assert!(!listed.retries(1, ErrorCode::GuestError));
        assert!(!listed.retries(1, ErrorCode::OwnerDied), "never retried");
        let never = RetryPolicy {
            max_retries: Some(0),
            exceptions: RetryExceptions::All,
        };
        assert!(!never.retries(1, ErrorCode::NodeDied));
    }

    #[test]
    fn the_wire_form_round_trips() {
        for p in [
            RetryPolicy::default(),
            RetryPolicy {
                max_retries: Some(0),
                exceptions: RetryExceptions::All,
            },
            RetryPolicy {
                max_retries: Some(7),
                exceptions: RetryExceptions::Codes(vec![ErrorCode::GuestError]),
            },
        ] {
            let mut o = pb::CallOptions::default();
            p.write_proto(&mut o);
            assert_eq!(RetryPolicy::from_proto(&o), p);
        }
    }
}

//! What a task's owner says when it gives up on a task, and where a retry
//! may not go. Which failures allow a retry is `reef_core::retry`'s rule
//! (node failures always, guest failures when `retry_exceptions` lists them).

use std::time::Duration;

use crate::error::{ErrorCode, ReefError};
use crate::spec::Attempt;

/// The error a task fails with after its last attempt: the attempt's own,
/// naming how many attempts ran once retries were possible (its failure
/// allowed one, or earlier attempts ran). The code stays the cause's.
pub fn final_error(mut error: ReefError, attempt: &Attempt) -> ReefError {
    if attempt.number > 1 || attempt.spec.options.retry.allows(error.code) {
        error.message = format!("{} (after {})", error.message, attempts(attempt.number));
    }
    error
}

/// The error of a retry that could not be placed or started: its own,
/// naming the attempts that ran before it and how long it waited for the
/// cluster to change (`waited`, when it did).
pub fn unplaced(mut error: ReefError, attempt: &Attempt, waited: Option<Duration>) -> ReefError {
    let waited = waited.map_or(String::new(), |w| {
        format!(
            ", not even after waiting {} s for a node that could",
            w.as_secs()
        )
    });
    error.message = format!(
        "{} (retrying after {}; the next could not be placed{waited})",
        error.message,
        attempts(attempt.number - 1)
    );
    error
}

/// The error of a first attempt that could not be placed: as placement
/// said, and how long it waited for a node, when it did.
pub fn never_placed(mut error: ReefError, waited: Option<Duration>) -> ReefError {
    if let Some(w) = waited {
        error.message = format!(
            "{} (not even after waiting {} s for a node that could)",
            error.message,
            w.as_secs()
        );
    }
    error
}

/// Whether a retry after this failure avoids the node it ran on: one that
/// died or is stopping takes no more work.
pub fn avoids_node(code: ErrorCode) -> bool {
    matches!(code, ErrorCode::NodeDied | ErrorCode::NodeStopping)
}

fn attempts(n: u32) -> String {
    if n == 1 {
        "1 attempt".into()
    } else {
        format!("{n} attempts")
    }
}

#[cfg(test)]
mod tests {
    use reef_core::{RetryExceptions, RetryPolicy};

    use super::*;
    use crate::spec::TaskSpec;

    fn attempt(number: u32, retry: RetryPolicy) -> Attempt {
        let mut spec = TaskSpec {
            return_id: 1,
            module: "m".into(),
            function: "f".into(),
            args: Vec::new(),
            options: Default::default(),
            owner: None,
            strategy: Default::default(),
            hops: 0,
            tenant: Default::default(),
        };
        spec.options.retry = retry;
        Attempt { spec, number }
    }

    #[test]
    fn the_final_error_names_the_attempts_and_keeps_the_code() {
        let died = ReefError::new(ErrorCode::NodeDied, "node n died");
        let e = final_error(died.clone(), &attempt(4, RetryPolicy::default()));
        assert_eq!(e.code, ErrorCode::NodeDied);
        assert_eq!(e.message, "node n died (after 4 attempts)");
        let never = RetryPolicy {
            max_retries: Some(0),
            exceptions: RetryExceptions::None,
        };
        let e = final_error(died, &attempt(1, never));
        assert_eq!(e.message, "node n died (after 1 attempt)");
        // A guest error that no policy retries fails as the guest said.
        let guest = ReefError::new(ErrorCode::GuestError, "no");
        let e = final_error(guest.clone(), &attempt(1, RetryPolicy::default()));
        assert_eq!(e, guest);
    }

    #[test]
    fn an_unplaced_retry_says_how_long_it_waited() {
        let none = ReefError::new(ErrorCode::Infeasible, "no node has 4 CPUs");
        let e = unplaced(none.clone(), &attempt(3, RetryPolicy::default()), None);
        assert_eq!(
            e.message,
            "no node has 4 CPUs (retrying after 2 attempts; the next could not be placed)"
        );
        let waited = Some(Duration::from_secs(30));
        let e = unplaced(none.clone(), &attempt(2, RetryPolicy::default()), waited);
        assert_eq!(e.code, ErrorCode::Infeasible);
        assert_eq!(
            e.message,
            "no node has 4 CPUs (retrying after 1 attempt; the next could not be placed, \
             not even after waiting 30 s for a node that could)"
        );
        let first = never_placed(none.clone(), None);
        assert_eq!(first, none);
        let first = never_placed(none, waited);
        assert_eq!(
            first.message,
            "no node has 4 CPUs (not even after waiting 30 s for a node that could)"
        );
    }
}

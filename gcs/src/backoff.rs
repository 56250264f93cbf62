//! Exponential backoff for reaching a control plane that went away.

use std::time::Duration;

/// Delays that double from `initial` up to `cap`: 100 ms, 200 ms, ... 2 s
/// by default. Small enough that a node notices a restarted head within
/// the cap, large enough that a cluster of nodes does not hammer it.
#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
    initial: Duration,
    cap: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self::new(Duration::from_millis(100), Duration::from_secs(2))
    }
}

impl Backoff {
    pub fn new(initial: Duration, cap: Duration) -> Self {
        Self {
            next: initial,
            initial,
            cap,
        }
    }

    /// The delay before the next attempt; doubles the one after, up to the cap.
    pub fn next_delay(&mut self) -> Duration {
        let delay = self.next;
        self.next = (self.next * 2).min(self.cap);
        delay
    }

    /// Starts over (the last attempt worked).
    pub fn reset(&mut self) {
        self.next = self.initial;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_cap_and_resets() {
        let ms = Duration::from_millis;
        let mut b = Backoff::new(ms(100), ms(500));
        let delays: Vec<_> = (0..5).map(|_| b.next_delay()).collect();
        assert_eq!(delays, [ms(100), ms(200), ms(400), ms(500), ms(500)]);
        b.reset();
        assert_eq!(b.next_delay(), ms(100));
    }
}

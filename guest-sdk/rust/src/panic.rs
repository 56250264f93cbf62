//! The panic hook: reports a guest panic's message and location to the host before the
//! panic aborts (which traps the instance).

use crate::raw;
use std::sync::Once;

/// Installs the hook the first time it is called (every export calls it on entry).
pub(crate) fn install_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let payload = info.payload();
            let message = if let Some(s) = payload.downcast_ref::<&str>() {
                s
            } else if let Some(s) = payload.downcast_ref::<String>() {
                s.as_str()
            } else {
                "Box<dyn Any>"
            };
            let report = match info.location() {
                Some(l) => format!("{} (at {}:{}:{})", message, l.file(), l.line(), l.column()),
                None => message.to_string(),
            };
            raw::report_panic(&report);
            // Keep the default output too: it lands on the task's stderr.
            previous(info);
        }));
    });
}

//! The one output format of `make bench`: a line per figure,
//! `<figure>: <value> <unit> (target <op> <value> <unit>)`; and the one of
//! `make bench-ray`, a line per figure measured on Reef and on Ray side by side
//! (see [`Compared`]).

use std::fmt;
use std::time::Duration;

/// What a figure is measured in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    Micros,
    TasksPerSec,
    CallsPerSec,
    MiB,
    GBPerSec,
    Millis,
    PerSec,
    /// A ratio ("1.00 x").
    Times,
    /// A share of another figure ("3.20 %").
    Percent,
}

impl Unit {
    /// A value in this unit: ratios with two decimals, the rest by [`number`].
    fn format(self, v: f64) -> String {
        match self {
            Unit::Times => format!("{v:.2}"),
            _ => number(v),
        }
    }

    fn symbol(self) -> &'static str {
        match self {
            Unit::Micros => "µs",
            Unit::TasksPerSec => "tasks/s",
            Unit::CallsPerSec => "calls/s",
            Unit::MiB => "MiB",
            Unit::GBPerSec => "GB/s",
            Unit::Millis => "ms",
            Unit::PerSec => "/s",
            Unit::Times => "x",
            Unit::Percent => "%",
        }
    }
}

/// The bound a figure is held to.
#[derive(Clone, Copy, Debug)]
pub enum Bound {
    AtMost(f64),
    AtLeast(f64),
    /// Equal to within the printed precision (e.g. "each byte pulled once").
    Equal(f64),
    /// No target: the figure is reported only (the line has no target part).
    Report,
}

/// One line of the report.
pub struct Figure {
    name: String,
    value: f64,
    unit: Unit,
    bound: Bound,
    /// "target", or e.g. "zero-copy target" on the line of a copying alternative.
    target_label: &'static str,
}

impl Figure {
    pub fn new(name: impl Into<String>, value: f64, unit: Unit, bound: Bound) -> Self {
        Figure {
            name: name.into(),
            value,
            unit,
            bound,
            target_label: "target",
        }
    }

    /// The line of a copying alternative: its bound is the zero-copy figure's target.
    pub fn alternative(name: impl Into<String>, value: f64, unit: Unit, bound: Bound) -> Self {
        Figure {
            target_label: "zero-copy target",
            ..Figure::new(name, value, unit, bound)
        }
    }

    pub fn met(&self) -> bool {
        match self.bound {
            Bound::AtMost(t) => self.value <= t,
            Bound::AtLeast(t) => self.value >= t,
            Bound::Equal(t) => self.unit.format(self.value) == self.unit.format(t),
            Bound::Report => true,
        }
    }

    /// Prints the line on stdout (the only thing the bench prints there).
    pub fn print(self) {
        println!("{self}");
        if self.target_label == "target" && !self.met() {
            tracing::warn!(figure = %self.name, "target missed");
        }
    }
}

impl fmt::Display for Figure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unit = self.unit.symbol();
        let (op, target) = match self.bound {
            Bound::AtMost(t) => ("<=", t),
            Bound::AtLeast(t) => (">=", t),
            Bound::Equal(t) => ("=", t),
            Bound::Report => {
                write!(f, "{}: {} {unit}", self.name, self.unit.format(self.value))?;
                return Ok(());
            }
        };
        write!(
            f,
            "{}: {} {unit} ({} {op} {} {unit})",
            self.name,
            self.unit.format(self.value),
            self.target_label,
            self.unit.format(target)
        )
    }
}

/// The first line of `make bench-ray`'s figures: how to read the ratios.
pub const COMPARED_HEADER: &str = "ratio = reef / ray. Rows in µs, ms or MiB: lower is better \
     (ratio < 1: Reef ahead). Rows in /s, tasks/s, calls/s or GB/s: higher is better \
     (ratio > 1: Reef ahead).";

/// One line of `make bench-ray`: a figure measured on Reef and on Ray in the
/// same run, `<figure>: reef <v> <unit> | ray <v> <unit> | ratio <reef/ray>`.
pub struct Compared {
    name: String,
    reef: f64,
    ray: f64,
    unit: Unit,
}

impl Compared {
    pub fn new(name: impl Into<String>, reef: f64, ray: f64, unit: Unit) -> Self {
        Compared {
            name: name.into(),
            reef,
            ray,
            unit,
        }
    }

    /// Prints the line on stdout.
    pub fn print(self) {
        println!("{self}");
    }
}

impl fmt::Display for Compared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unit = self.unit.symbol();
        let ratio = self.reef / self.ray;
        // Small ratios keep two significant digits.
        let ratio = if ratio < 0.1 {
            format!("{ratio:.3}")
        } else {
            number(ratio)
        };
        write!(
            f,
            "{}: reef {} {unit} | ray {} {unit} | ratio {ratio}",
            self.name,
            self.unit.format(self.reef),
            self.unit.format(self.ray),
        )
    }
}

/// Three significant digits for small values, whole numbers from 100 up.
fn number(v: f64) -> String {
    if v.abs() >= 100.0 || v == v.trunc() {
        format!("{v:.0}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

pub fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// The median of some durations, in µs.
pub fn median_us(samples: &[Duration]) -> f64 {
    percentile_us(samples, 0.5)
}

/// The `q`-quantile (0..=1, nearest rank) of some durations, in µs.
pub fn percentile_us(samples: &[Duration], q: f64) -> f64 {
    assert!(!samples.is_empty(), "no samples");
    let mut sorted = samples.to_vec();
    sorted.sort();
    let i = ((sorted.len() - 1) as f64 * q).round() as usize;
    micros(sorted[i])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_format() {
        let f = Figure::new(
            "sync task round trip (median)",
            143.4,
            Unit::Micros,
            Bound::AtMost(200.0),
        );
        assert_eq!(
            f.to_string(),
            "sync task round trip (median): 143 µs (target <= 200 µs)"
        );
        assert!(f.met());
        let g = Figure::alternative("copy", 41000.0, Unit::Micros, Bound::AtMost(100.0));
        assert_eq!(g.to_string(), "copy: 41000 µs (zero-copy target <= 100 µs)");
        let e = Figure::new("pulls per node", 1.0, Unit::Times, Bound::Equal(1.0));
        assert_eq!(e.to_string(), "pulls per node: 1.00 x (target = 1.00 x)");
        assert!(e.met());
        let r = Figure::new("module size", 4.5, Unit::MiB, Bound::Report);
        assert_eq!(r.to_string(), "module size: 4.50 MiB");
        assert_eq!(number(6.234), "6.23");
        assert_eq!(number(12.34), "12.3");
        assert_eq!(number(20000.0), "20000");
    }

    #[test]
    fn compared_line_format() {
        let c = Compared::new("seed demo (median)", 4.2, 12.5, Unit::Millis);
        assert_eq!(
            c.to_string(),
            "seed demo (median): reef 4.20 ms | ray 12.5 ms | ratio 0.34"
        );
        let t = Compared::new("tasks", 51000.0, 1741.0, Unit::TasksPerSec);
        assert_eq!(
            t.to_string(),
            "tasks: reef 51000 tasks/s | ray 1741 tasks/s | ratio 29.3"
        );
        let s = Compared::new("round trip", 100.0, 2600.0, Unit::Micros);
        assert_eq!(
            s.to_string(),
            "round trip: reef 100 µs | ray 2600 µs | ratio 0.038"
        );
    }

    #[test]
    fn medians() {
        let d: Vec<Duration> = [5, 1, 3]
            .iter()
            .map(|&n| Duration::from_micros(n))
            .collect();
        assert_eq!(median_us(&d), 3.0);
        assert_eq!(percentile_us(&d, 1.0), 5.0);
    }
}

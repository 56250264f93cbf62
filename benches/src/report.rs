//! The one output format of `make bench`: a line per figure,
//! `<figure>: <value> <unit> (target <op> <value> <unit>)`, optionally
//! followed by Ray's figure on this machine.

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
    ray: Option<&'static str>,
}

impl Figure {
    pub fn new(name: impl Into<String>, value: f64, unit: Unit, bound: Bound) -> Self {
        Figure {
            name: name.into(),
            value,
            unit,
            bound,
            target_label: "target",
            ray: None,
        }
    }

    /// The line of a copying alternative: its bound is the zero-copy figure's target.
    pub fn alternative(name: impl Into<String>, value: f64, unit: Unit, bound: Bound) -> Self {
        Figure {
            target_label: "zero-copy target",
            ..Figure::new(name, value, unit, bound)
        }
    }

    /// Ray 2.60's figure for the same benchmark, measured on the same machine.
    pub fn ray(mut self, figure: &'static str) -> Self {
        self.ray = Some(figure);
        self
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
        )?;
        if let Some(ray) = self.ray {
            write!(f, " (Ray 2.60 here: {ray})")?;
        }
        Ok(())
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
        )
        .ray("5.8 ms");
        assert_eq!(
            f.to_string(),
            "sync task round trip (median): 143 µs (target <= 200 µs) (Ray 2.60 here: 5.8 ms)"
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
    fn medians() {
        let d: Vec<Duration> = [5, 1, 3]
            .iter()
            .map(|&n| Duration::from_micros(n))
            .collect();
        assert_eq!(median_us(&d), 3.0);
        assert_eq!(percentile_us(&d, 1.0), 5.0);
    }
}

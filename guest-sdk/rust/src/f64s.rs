//! Reductions over `f64` slices (typically a view's [`View::as_f64s`](crate::View::as_f64s))
//! that run at memory speed: Wasm SIMD (`simd128`) with several independent accumulators.
//!
//! A plain `xs.iter().sum()` is one dependent chain of additions: each waits for the
//! previous one (~4 cycles), which caps it at a third of what memory delivers. These
//! helpers keep eight partial sums in flight (four 2-lane vectors) and combine them at
//! the end, the way numpy does; so a sum may differ from the sequential one in the last
//! bits (it is exact whenever every partial sum is, e.g. for integers below 2^53).
//!
//! On wasm32 the vector code is always compiled in (every Reef node runs Wasm SIMD),
//! whatever the crate's own target features; elsewhere (native unit tests) the same
//! eight-way split runs in scalar code, so results are identical on both.
//!
//! ```ignore
//! let view = args.view(0)?;
//! let total = reef_guest::f64s::sum(view.as_f64s()?);
//! ```

/// Elements handled per step: four 2-lane vectors.
const STEP: usize = 8;
/// Steps per iteration of the wasm loops (see `imp::reduce!`).
#[cfg(target_arch = "wasm32")]
const UNROLL: usize = 4;

/// The sum of `xs` (0 for an empty slice), in eight interleaved partial sums.
pub fn sum(xs: &[f64]) -> f64 {
    imp::sum(xs)
}

/// The dot product of `a` and `b`, over the shorter of the two.
pub fn dot(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len().min(b.len());
    imp::dot(&a[..n], &b[..n])
}

/// The smallest element, `None` for an empty slice; NaN if any element is NaN.
pub fn min(xs: &[f64]) -> Option<f64> {
    if xs.is_empty() {
        return None;
    }
    Some(imp::min(xs))
}

/// The largest element, `None` for an empty slice; NaN if any element is NaN.
pub fn max(xs: &[f64]) -> Option<f64> {
    if xs.is_empty() {
        return None;
    }
    Some(imp::max(xs))
}

/// NaN-propagating scalar min/max, matching Wasm's `f64.min`/`f64.max` (and `f64x2`'s).
fn min2(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else if a < b || (a == b && a.is_sign_negative()) {
        a
    } else {
        b
    }
}

fn max2(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else if a > b || (a == b && a.is_sign_positive()) {
        a
    } else {
        b
    }
}

/// Combines eight partial results the same way on every target:
/// `((p0+p4) + (p2+p6)) + ((p1+p5) + (p3+p7))` for sums (lane order of the vectors).
fn combine(p: [f64; STEP], f: fn(f64, f64) -> f64) -> f64 {
    let v = [f(p[0], p[4]), f(p[1], p[5]), f(p[2], p[6]), f(p[3], p[7])];
    let (lane0, lane1) = (f(v[0], v[2]), f(v[1], v[3]));
    f(lane0, lane1)
}

#[cfg(target_arch = "wasm32")]
mod imp {
    use super::{combine, max2, min2, STEP, UNROLL};
    use core::arch::wasm32::*;

    /// Loads two `f64`s at `xs[i..i + 2]`.
    ///
    /// # Safety
    /// `i + 2 <= xs.len()`.
    #[inline]
    #[target_feature(enable = "simd128")]
    unsafe fn load(xs: &[f64], i: usize) -> v128 {
        debug_assert!(i + 2 <= xs.len());
        // SAFETY: in bounds (the caller's contract); v128_load has no alignment requirement.
        unsafe { v128_load(xs.as_ptr().add(i) as *const v128) }
    }

    /// The four accumulators' lanes in the order `combine` expects.
    #[inline]
    #[target_feature(enable = "simd128")]
    fn lanes(v: [v128; 4]) -> [f64; STEP] {
        [
            f64x2_extract_lane::<0>(v[0]),
            f64x2_extract_lane::<0>(v[1]),
            f64x2_extract_lane::<0>(v[2]),
            f64x2_extract_lane::<0>(v[3]),
            f64x2_extract_lane::<1>(v[0]),
            f64x2_extract_lane::<1>(v[1]),
            f64x2_extract_lane::<1>(v[2]),
            f64x2_extract_lane::<1>(v[3]),
        ]
    }

    /// Loads two `f64`s at `p.add(k)`.
    ///
    /// # Safety
    /// `p.add(k)..p.add(k + 2)` lies inside one slice.
    #[inline]
    #[target_feature(enable = "simd128")]
    unsafe fn load_at(p: *const f64, k: usize) -> v128 {
        // SAFETY: in bounds (the caller's contract); v128_load has no alignment requirement.
        unsafe { v128_load(p.add(k) as *const v128) }
    }

    /// Folds `xs` into four vector accumulators starting at `$init` with `$vop`, then the
    /// tail into their lanes with `$sop`, and combines the eight partial results.
    ///
    /// The main loop takes `UNROLL` blocks of `STEP` per iteration through a moving
    /// pointer. Why that many: wasmtime checks for an epoch tick at every loop header,
    /// and because that check may call into the host, Cranelift keeps the accumulators
    /// in stack slots, stored and reloaded once per iteration. With one block per
    /// iteration that store-to-load chain, not memory, bounded the sum; with four the
    /// chain is paid once per 256 bytes. The remaining whole blocks go one by one.
    /// Block after block, each accumulator sees the same elements in the same order
    /// whatever the unrolling, so results are unchanged (and equal the native code's).
    macro_rules! reduce {
        ($xs:expr, $init:expr, $vop:ident, $sop:expr) => {{
            let xs: &[f64] = $xs;
            let mut acc = [$init; 4];
            let body = xs.len() - xs.len() % STEP;
            let unrolled = body - body % (UNROLL * STEP);
            let mut p = xs.as_ptr();
            // SAFETY: unrolled <= body <= xs.len(): one past the end at most.
            let (end, body_end) = unsafe { (p.add(unrolled), xs.as_ptr().add(body)) };
            while p < end {
                // SAFETY: p + UNROLL * STEP <= end (unrolled is a multiple of it), inside xs.
                unsafe {
                    acc[0] = $vop(acc[0], load_at(p, 0));
                    acc[1] = $vop(acc[1], load_at(p, 2));
                    acc[2] = $vop(acc[2], load_at(p, 4));
                    acc[3] = $vop(acc[3], load_at(p, 6));
                    acc[0] = $vop(acc[0], load_at(p, 8));
                    acc[1] = $vop(acc[1], load_at(p, 10));
                    acc[2] = $vop(acc[2], load_at(p, 12));
                    acc[3] = $vop(acc[3], load_at(p, 14));
                    acc[0] = $vop(acc[0], load_at(p, 16));
                    acc[1] = $vop(acc[1], load_at(p, 18));
                    acc[2] = $vop(acc[2], load_at(p, 20));
                    acc[3] = $vop(acc[3], load_at(p, 22));
                    acc[0] = $vop(acc[0], load_at(p, 24));
                    acc[1] = $vop(acc[1], load_at(p, 26));
                    acc[2] = $vop(acc[2], load_at(p, 28));
                    acc[3] = $vop(acc[3], load_at(p, 30));
                    p = p.add(UNROLL * STEP);
                }
            }
            while p < body_end {
                // SAFETY: p + STEP <= body_end (body - unrolled is a multiple of STEP).
                unsafe {
                    acc[0] = $vop(acc[0], load_at(p, 0));
                    acc[1] = $vop(acc[1], load_at(p, 2));
                    acc[2] = $vop(acc[2], load_at(p, 4));
                    acc[3] = $vop(acc[3], load_at(p, 6));
                    p = p.add(STEP);
                }
            }
            let mut p = lanes(acc);
            for (k, &x) in xs[body..].iter().enumerate() {
                p[k] = $sop(p[k], x);
            }
            combine(p, $sop)
        }};
    }

    #[target_feature(enable = "simd128")]
    pub fn sum(xs: &[f64]) -> f64 {
        reduce!(xs, f64x2_splat(0.0), f64x2_add, |a: f64, b: f64| a + b)
    }

    #[target_feature(enable = "simd128")]
    pub fn min(xs: &[f64]) -> f64 {
        reduce!(xs, f64x2_splat(xs[0]), f64x2_min, min2)
    }

    #[target_feature(enable = "simd128")]
    pub fn max(xs: &[f64]) -> f64 {
        reduce!(xs, f64x2_splat(xs[0]), f64x2_max, max2)
    }

    #[target_feature(enable = "simd128")]
    pub fn dot(a: &[f64], b: &[f64]) -> f64 {
        let n = a.len().min(b.len());
        let (a, b) = (&a[..n], &b[..n]);
        let mut acc = [f64x2_splat(0.0); 4];
        let body = n - n % STEP;
        let mut i = 0;
        while i < body {
            // SAFETY: i + 8 <= body <= n, the length of both slices.
            unsafe {
                acc[0] = f64x2_add(acc[0], f64x2_mul(load(a, i), load(b, i)));
                acc[1] = f64x2_add(acc[1], f64x2_mul(load(a, i + 2), load(b, i + 2)));
                acc[2] = f64x2_add(acc[2], f64x2_mul(load(a, i + 4), load(b, i + 4)));
                acc[3] = f64x2_add(acc[3], f64x2_mul(load(a, i + 6), load(b, i + 6)));
            }
            i += STEP;
        }
        let mut p = lanes(acc);
        for (k, (&x, &y)) in a[body..].iter().zip(&b[body..]).enumerate() {
            p[k] += x * y;
        }
        combine(p, |x, y| x + y)
    }
}

#[cfg(not(target_arch = "wasm32"))]
mod imp {
    //! The same eight-way split in scalar code, for native builds (unit tests).
    use super::{combine, max2, min2, STEP};

    fn reduce(xs: &[f64], init: f64, f: fn(f64, f64) -> f64) -> f64 {
        let mut p = [init; STEP];
        let mut chunks = xs.chunks_exact(STEP);
        for c in &mut chunks {
            // Vector k holds elements 2k and 2k+1: lane 0 in p[k], lane 1 in p[k + 4].
            for k in 0..4 {
                p[k] = f(p[k], c[2 * k]);
                p[k + 4] = f(p[k + 4], c[2 * k + 1]);
            }
        }
        // The wasm code folds tail element k into p[k] of its lane-ordered partials.
        for (k, &x) in chunks.remainder().iter().enumerate() {
            p[k] = f(p[k], x);
        }
        combine(p, f)
    }

    pub fn sum(xs: &[f64]) -> f64 {
        reduce(xs, 0.0, |a, b| a + b)
    }
    pub fn min(xs: &[f64]) -> f64 {
        reduce(xs, xs[0], min2)
    }
    pub fn max(xs: &[f64]) -> f64 {
        reduce(xs, xs[0], max2)
    }
    pub fn dot(a: &[f64], b: &[f64]) -> f64 {
        let mut p = [0.0; STEP];
        let mut ca = a.chunks_exact(STEP);
        let mut cb = b.chunks_exact(STEP);
        for (x, y) in (&mut ca).zip(&mut cb) {
            for k in 0..4 {
                p[k] += x[2 * k] * y[2 * k];
                p[k + 4] += x[2 * k + 1] * y[2 * k + 1];
            }
        }
        for (k, (&x, &y)) in ca.remainder().iter().zip(cb.remainder()).enumerate() {
            p[k] += x * y;
        }
        combine(p, |x, y| x + y)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive_sum(xs: &[f64]) -> f64 {
        xs.iter().sum()
    }

    #[test]
    fn sums_match_every_length() {
        for n in 0..40 {
            let xs: Vec<f64> = (0..n).map(|i| i as f64 * 1.5 - 7.0).collect();
            assert_eq!(sum(&xs), naive_sum(&xs), "n = {}", n);
            let ys: Vec<f64> = (0..n).map(|i| (i % 5) as f64).collect();
            let expect: f64 = xs.iter().zip(&ys).map(|(x, y)| x * y).sum();
            assert_eq!(dot(&xs, &ys), expect, "n = {}", n);
        }
    }

    #[test]
    fn large_integer_sums_are_exact() {
        let xs: Vec<f64> = (0..1_000_003).map(|i| i as f64).collect();
        assert_eq!(sum(&xs), 1_000_002.0 * 1_000_003.0 / 2.0);
    }

    #[test]
    fn dot_uses_the_shorter_slice() {
        assert_eq!(dot(&[1.0, 2.0, 3.0], &[4.0, 5.0]), 14.0);
        assert_eq!(dot(&[], &[1.0]), 0.0);
    }

    #[test]
    fn min_max() {
        assert_eq!(min(&[]), None);
        assert_eq!(max(&[]), None);
        for n in 1..40 {
            let xs: Vec<f64> = (0..n).map(|i| ((i * 7919) % 31) as f64 - 10.0).collect();
            let lo = xs.iter().cloned().fold(f64::INFINITY, f64::min);
            let hi = xs.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            assert_eq!(min(&xs), Some(lo), "n = {}", n);
            assert_eq!(max(&xs), Some(hi), "n = {}", n);
        }
        assert!(min(&[1.0, f64::NAN, 3.0]).unwrap().is_nan());
        assert!(max(&[1.0; 20]
            .iter()
            .chain(&[f64::NAN])
            .cloned()
            .collect::<Vec<_>>())
        .unwrap()
        .is_nan());
    }
}

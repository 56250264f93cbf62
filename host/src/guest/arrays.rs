//! The `f64-*` reductions of `reef:runtime/host`: sums, minima, maxima and dot
//! products over an object's little-endian f64s, computed by the node over
//! the object's stored bytes in place. Python and JavaScript guests cannot map
//! a view (their bindings copy every `list<u8>`), and their interpreted loops
//! run at a few hundred MB/s; one of these calls reads the object at memory
//! speed and copies nothing into the guest.
//!
//! The eight partial results and the order they are combined in are those of
//! the Rust and C SDKs' `f64s` helpers (four 2-lane vectors, then
//! `((p0+p4) + (p2+p6)) + ((p1+p5) + (p3+p7))`), so every language gets the
//! same bits for the same range.

use std::borrow::Cow;
use std::sync::Arc;

use wasmtime::component::LinkerInstance;
use wasmtime::{AsContextMut, StoreContextMut};

use super::ctx::GuestCtx;
use super::read::read_object;
use super::types::Failure;
use crate::error::{ErrorCode, ReefError, ReefResult};
use crate::store::{Data, ObjectId};

type Ctx<'a> = StoreContextMut<'a, GuestCtx>;

/// Elements per step: four 2-lane vectors.
const STEP: usize = 8;
/// Elements reduced between yields to the executor (8 MiB): a 1 GiB reduction
/// must not hold a runtime thread for its whole ~100 ms.
const CHUNK: usize = 1 << 20;

pub fn add_to_linker(host: &mut LinkerInstance<'_, GuestCtx>) -> wasmtime::Result<()> {
    host.func_wrap_async(
        "f64-sum",
        |store: Ctx, (id, start, end): (ObjectId, u64, u64)| {
            Box::new(async move {
                let result = reduce(store, id, start, end, Op::Sum).await;
                Ok((result.map(|r| r.unwrap_or(0.0)).map_err(Failure::from),))
            })
        },
    )?;
    host.func_wrap_async(
        "f64-min",
        |store: Ctx, (id, start, end): (ObjectId, u64, u64)| {
            Box::new(async move {
                let result = reduce(store, id, start, end, Op::Min).await;
                Ok((result.map_err(Failure::from),))
            })
        },
    )?;
    host.func_wrap_async(
        "f64-max",
        |store: Ctx, (id, start, end): (ObjectId, u64, u64)| {
            Box::new(async move {
                let result = reduce(store, id, start, end, Op::Max).await;
                Ok((result.map_err(Failure::from),))
            })
        },
    )?;
    host.func_wrap_async(
        "f64-dot",
        |store: Ctx, (a, a_start, b, b_start, len): (ObjectId, u64, ObjectId, u64, u64)| {
            Box::new(async move {
                let result = dot(store, (a, a_start), (b, b_start), len).await;
                Ok((result.map_err(Failure::from),))
            })
        },
    )?;
    Ok(())
}

#[derive(Clone, Copy)]
enum Op {
    Sum,
    Min,
    Max,
}

async fn reduce(
    mut store: Ctx<'_>,
    id: ObjectId,
    start: u64,
    end: u64,
    op: Op,
) -> ReefResult<Option<f64>> {
    let data = read_object(store.as_context_mut(), id).await?;
    let all = f64s(id, &data)?;
    let xs = range(id, &all, start, end)?;
    let Some(&first) = xs.first() else {
        return Ok(None);
    };
    let (init, f): (f64, fn(f64, f64) -> f64) = match op {
        Op::Sum => (0.0, add),
        Op::Min => (first, min2),
        Op::Max => (first, max2),
    };
    let mut acc = Partials::new(init);
    for chunk in xs.chunks(CHUNK) {
        // One monomorphic loop per operation (through the fn pointer `f`, the
        // loop would make a call per element and never vectorize).
        match op {
            Op::Sum => acc.fold(chunk, add),
            Op::Min => acc.fold(chunk, min2),
            Op::Max => acc.fold(chunk, max2),
        }
        tokio::task::yield_now().await;
    }
    Ok(Some(acc.finish(f)))
}

async fn dot(
    mut store: Ctx<'_>,
    (a, a_start): (ObjectId, u64),
    (b, b_start): (ObjectId, u64),
    len: u64,
) -> ReefResult<f64> {
    let a_data = read_object(store.as_context_mut(), a).await?;
    let b_data = read_object(store.as_context_mut(), b).await?;
    let (a_all, b_all) = (f64s(a, &a_data)?, f64s(b, &b_data)?);
    let xs = range(a, &a_all, a_start, a_start.saturating_add(len))?;
    let ys = range(b, &b_all, b_start, b_start.saturating_add(len))?;
    let mut acc = Partials::new(0.0);
    for (x, y) in xs.chunks(CHUNK).zip(ys.chunks(CHUNK)) {
        acc.fold_products(x, y);
        tokio::task::yield_now().await;
    }
    Ok(acc.finish(add))
}

/// The object's bytes as f64s: in place when 8-byte aligned (arena blocks
/// always are), else a copy (a small inline object on the heap).
fn f64s(id: ObjectId, data: &Arc<Data>) -> ReefResult<Cow<'_, [f64]>> {
    let bytes = data.as_slice();
    if !bytes.len().is_multiple_of(8) {
        return Err(ReefError::new(
            ErrorCode::BadArgument,
            format!(
                "object {id:#x} has {} bytes, not a whole number of f64s",
                bytes.len()
            ),
        ));
    }
    // SAFETY: every bit pattern is a valid f64; align_to only yields the
    // aligned middle part.
    let (head, mid, _) = unsafe { bytes.align_to::<f64>() };
    if head.is_empty() {
        return Ok(Cow::Borrowed(mid));
    }
    Ok(Cow::Owned(
        bytes
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().expect("8-byte chunk")))
            .collect(),
    ))
}

fn range(id: ObjectId, xs: &[f64], start: u64, end: u64) -> ReefResult<&[f64]> {
    let n = xs.len() as u64;
    if start > end || end > n {
        return Err(ReefError::new(
            ErrorCode::BadArgument,
            format!("range {start}..{end} is outside object {id:#x}'s 0..{n} f64s"),
        ));
    }
    Ok(&xs[start as usize..end as usize])
}

/// Eight partial results. `acc[j]` takes every element whose index is `j`
/// modulo 8 (a plain loop the compiler vectorizes); in the SDKs' vector
/// order that is lane `j % 2` of vector `j / 2`.
struct Partials {
    acc: [f64; STEP],
    /// The last elements (fewer than 8), folded in `finish`: callers pass
    /// chunks whose lengths are multiples of 8 except the last one's.
    tail: Vec<f64>,
}

impl Partials {
    fn new(init: f64) -> Partials {
        Partials {
            acc: [init; STEP],
            tail: Vec::new(),
        }
    }

    #[inline(always)]
    fn fold(&mut self, xs: &[f64], f: impl Fn(f64, f64) -> f64) {
        let mut acc = self.acc;
        let mut chunks = xs.chunks_exact(STEP);
        for c in &mut chunks {
            for (a, &x) in acc.iter_mut().zip(c) {
                *a = f(*a, x);
            }
        }
        self.acc = acc;
        self.tail.extend_from_slice(chunks.remainder());
    }

    fn fold_products(&mut self, xs: &[f64], ys: &[f64]) {
        let mut acc = self.acc;
        let mut cx = xs.chunks_exact(STEP);
        let mut cy = ys.chunks_exact(STEP);
        for (x, y) in (&mut cx).zip(&mut cy) {
            for ((a, &p), &q) in acc.iter_mut().zip(x).zip(y) {
                *a += p * q;
            }
        }
        self.acc = acc;
        self.tail.extend(
            cx.remainder()
                .iter()
                .zip(cy.remainder())
                .map(|(x, y)| x * y),
        );
    }

    /// The SDKs' lane order (`p[k]` = vector `k % 4`, lane `k / 4`), the tail
    /// folded into `p[0..]`, then their combination.
    fn finish(self, f: fn(f64, f64) -> f64) -> f64 {
        let a = self.acc;
        let mut p = [a[0], a[2], a[4], a[6], a[1], a[3], a[5], a[7]];
        for (k, &x) in self.tail.iter().enumerate() {
            p[k] = f(p[k], x);
        }
        let v = [f(p[0], p[4]), f(p[1], p[5]), f(p[2], p[6]), f(p[3], p[7])];
        f(f(v[0], v[2]), f(v[1], v[3]))
    }
}

fn add(a: f64, b: f64) -> f64 {
    a + b
}

/// NaN-propagating min/max, as Wasm's `f64.min`/`f64.max` (and the SDKs').
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

#[cfg(test)]
mod tests {
    use super::*;

    fn sum(xs: &[f64]) -> f64 {
        let mut acc = Partials::new(0.0);
        for c in xs.chunks(16) {
            acc.fold(c, |a, b| a + b);
        }
        acc.finish(|a, b| a + b)
    }

    /// The SDKs' combination, written as they write it (elements 2k and 2k+1
    /// of each step into p[k] and p[k + 4]).
    fn sdk_sum(xs: &[f64]) -> f64 {
        let mut p = [0.0; STEP];
        let mut chunks = xs.chunks_exact(STEP);
        for c in &mut chunks {
            for k in 0..4 {
                p[k] += c[2 * k];
                p[k + 4] += c[2 * k + 1];
            }
        }
        for (k, &x) in chunks.remainder().iter().enumerate() {
            p[k] += x;
        }
        let v = [p[0] + p[4], p[1] + p[5], p[2] + p[6], p[3] + p[7]];
        (v[0] + v[2]) + (v[1] + v[3])
    }

    #[test]
    fn sums_match_the_sdks_bit_for_bit() {
        for n in 0..70 {
            // Values whose sum depends on the order of additions.
            let xs: Vec<f64> = (0..n).map(|i| 1.0 / (i as f64 + 0.3) * 1e10).collect();
            assert_eq!(sum(&xs).to_bits(), sdk_sum(&xs).to_bits(), "n = {n}");
        }
    }

    #[test]
    fn min_max_and_nan() {
        let xs = [3.0, -1.0, 7.5, 2.0, 9.0, -4.0, 0.0, 1.0, 5.0, -8.0];
        let reduce = |f: fn(f64, f64) -> f64| {
            let mut acc = Partials::new(xs[0]);
            acc.fold(&xs, f);
            acc.finish(f)
        };
        assert_eq!(reduce(min2), -8.0);
        assert_eq!(reduce(max2), 9.0);
        let mut acc = Partials::new(1.0);
        acc.fold(&[1.0, f64::NAN, 2.0], min2);
        assert!(acc.finish(min2).is_nan());
    }

    #[test]
    fn unaligned_and_odd_sized_objects() {
        let mut bytes = vec![0u8; 1];
        for x in [1.5f64, 2.5, 3.0] {
            bytes.extend_from_slice(&x.to_le_bytes());
        }
        let data = Arc::new(Data::Inline(bytes::Bytes::from(bytes).slice(1..)));
        assert_eq!(&*f64s(1, &data).unwrap(), &[1.5, 2.5, 3.0]);
        let odd = Arc::new(Data::Inline(bytes::Bytes::from_static(&[0; 9])));
        assert_eq!(f64s(1, &odd).unwrap_err().code, ErrorCode::BadArgument);
        assert_eq!(
            range(1, &[1.0, 2.0], 1, 3).unwrap_err().code,
            ErrorCode::BadArgument
        );
        assert_eq!(range(1, &[1.0, 2.0], 1, 2).unwrap(), &[2.0]);
    }
}

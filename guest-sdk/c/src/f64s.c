/*
 * Reductions over doubles (reef_f64_sum, _dot, _min, _max): four 2-lane Wasm SIMD
 * accumulators (eight partial results) so that loads, not the latency of one chain of
 * additions, set the pace. The partials are combined in the same order as the Rust SDK's
 * `reef_guest::f64s`, so both return bit-identical results.
 *
 * Without -msimd128 the same eight-way split runs in scalar code.
 */
#include <reef.h>

#include <math.h>

#define STEP 8

/* NaN-propagating min/max, as Wasm's f64.min/f64.max and f64x2.min/max. */
static double min2(double a, double b) {
    if (isnan(a) || isnan(b))
        return NAN;
    return (a < b || (a == b && signbit(a))) ? a : b;
}
static double max2(double a, double b) {
    if (isnan(a) || isnan(b))
        return NAN;
    return (a > b || (a == b && !signbit(a))) ? a : b;
}
static double add2(double a, double b) { return a + b; }

/* p holds [v0.lane0, v1.lane0, v2.lane0, v3.lane0, v0.lane1, v1.lane1, v2.lane1, v3.lane1]. */
static double combine(const double p[STEP], double (*f)(double, double)) {
    double v0 = f(p[0], p[4]), v1 = f(p[1], p[5]), v2 = f(p[2], p[6]), v3 = f(p[3], p[7]);
    return f(f(v0, v2), f(v1, v3));
}

#ifdef __wasm_simd128__
#include <wasm_simd128.h>

/* Loads two doubles. Through memcpy rather than wasm_v128_load, whose pointer
 * dereference -fsanitize=null would check on every load (it compiles to one v128.load). */
static inline v128_t load2(const double *p) {
    v128_t v;
    __builtin_memcpy(&v, p, sizeof v);
    return v;
}

static void lanes(const v128_t acc[4], double p[STEP]) {
    for (int k = 0; k < 4; k++) {
        p[k] = wasm_f64x2_extract_lane(acc[k], 0);
        p[k + 4] = wasm_f64x2_extract_lane(acc[k], 1);
    }
}

/* UNROLL blocks of STEP per iteration of the main loop: wasmtime checks for an epoch tick
 * at every loop header and, because that check may call the host, keeps the accumulators
 * in stack slots, stored and reloaded once per iteration; four blocks pay that once per
 * 256 bytes (as the Rust SDK does). Each accumulator sees the same elements in the same
 * order whatever the unrolling. */
#define UNROLL 4

#define REDUCE(xs, n, init, vop, sop)                                                    \
    do {                                                                                 \
        v128_t acc[4] = {init, init, init, init};                                        \
        size_t body = (n) - (n) % STEP;                                                  \
        size_t unrolled = body - body % (UNROLL * STEP);                                 \
        size_t i = 0;                                                                    \
        for (; i < unrolled; i += UNROLL * STEP) {                                       \
            for (int b = 0; b < UNROLL; b++) {                                           \
                const double *x = xs + i + b * STEP;                                     \
                acc[0] = vop(acc[0], load2(x));                                          \
                acc[1] = vop(acc[1], load2(x + 2));                                      \
                acc[2] = vop(acc[2], load2(x + 4));                                      \
                acc[3] = vop(acc[3], load2(x + 6));                                      \
            }                                                                            \
        }                                                                                \
        for (; i < body; i += STEP) {                                                    \
            acc[0] = vop(acc[0], load2(xs + i));                                         \
            acc[1] = vop(acc[1], load2(xs + i + 2));                                     \
            acc[2] = vop(acc[2], load2(xs + i + 4));                                     \
            acc[3] = vop(acc[3], load2(xs + i + 6));                                     \
        }                                                                                \
        double p[STEP];                                                                  \
        lanes(acc, p);                                                                   \
        for (size_t k = 0; body + k < (n); k++)                                          \
            p[k] = sop(p[k], xs[body + k]);                                              \
        return combine(p, sop);                                                          \
    } while (0)

static double sum(const double *xs, size_t n) {
    REDUCE(xs, n, wasm_f64x2_splat(0.0), wasm_f64x2_add, add2);
}
static double min_of(const double *xs, size_t n) {
    REDUCE(xs, n, wasm_f64x2_splat(xs[0]), wasm_f64x2_min, min2);
}
static double max_of(const double *xs, size_t n) {
    REDUCE(xs, n, wasm_f64x2_splat(xs[0]), wasm_f64x2_max, max2);
}

double reef_f64_dot(const double *a, const double *b, size_t n) {
    v128_t z = wasm_f64x2_splat(0.0);
    v128_t acc[4] = {z, z, z, z};
    size_t body = n - n % STEP;
    for (size_t i = 0; i < body; i += STEP)
        for (int k = 0; k < 4; k++)
            acc[k] = wasm_f64x2_add(
                acc[k], wasm_f64x2_mul(load2(a + i + 2 * k), load2(b + i + 2 * k)));
    double p[STEP];
    lanes(acc, p);
    for (size_t k = 0; body + k < n; k++)
        p[k] += a[body + k] * b[body + k];
    return combine(p, add2);
}

#else /* scalar: the same eight-way split */

static double reduce(const double *xs, size_t n, double init, double (*f)(double, double)) {
    double p[STEP];
    for (int k = 0; k < STEP; k++)
        p[k] = init;
    size_t body = n - n % STEP;
    for (size_t i = 0; i < body; i += STEP)
        for (int k = 0; k < 4; k++) {
            p[k] = f(p[k], xs[i + 2 * k]);
            p[k + 4] = f(p[k + 4], xs[i + 2 * k + 1]);
        }
    for (size_t k = 0; body + k < n; k++)
        p[k] = f(p[k], xs[body + k]);
    return combine(p, f);
}
static double sum(const double *xs, size_t n) { return reduce(xs, n, 0.0, add2); }
static double min_of(const double *xs, size_t n) { return reduce(xs, n, xs[0], min2); }
static double max_of(const double *xs, size_t n) { return reduce(xs, n, xs[0], max2); }

double reef_f64_dot(const double *a, const double *b, size_t n) {
    double p[STEP] = {0};
    size_t body = n - n % STEP;
    for (size_t i = 0; i < body; i += STEP)
        for (int k = 0; k < 4; k++) {
            p[k] += a[i + 2 * k] * b[i + 2 * k];
            p[k + 4] += a[i + 2 * k + 1] * b[i + 2 * k + 1];
        }
    for (size_t k = 0; body + k < n; k++)
        p[k] += a[body + k] * b[body + k];
    return combine(p, add2);
}

#endif

double reef_f64_sum(const double *xs, size_t n) { return sum(xs, n); }

bool reef_f64_min(const double *xs, size_t n, double *out) {
    if (n == 0)
        return false;
    *out = min_of(xs, n);
    return true;
}

bool reef_f64_max(const double *xs, size_t n, double *out) {
    if (n == 0)
        return false;
    *out = max_of(xs, n);
    return true;
}

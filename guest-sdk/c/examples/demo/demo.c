/*
 * The demo module in C (the same contract as examples/guests/demo): tasks sum_slice,
 * noop, echo, add and fail, and the actor class Accumulator (in accumulator.cpp, C++).
 *
 * Build: guest-sdk/c/build.sh guest-sdk/c/examples/demo target/guests/c_demo.wasm
 */
#include <reef.h>

/* sum_slice(xs: object of little-endian f64, start: u64, end: u64) -> f64: sums
 * xs[start..end] through a zero-copy view of the object (with the SDK's SIMD sum). */
static int sum_slice(const reef_args *args, reef_out *out) {
    reef_view view;
    uint64_t start, end;
    size_t n;
    REEF_TRY(reef_arg_view(args, 0, &view)); /* released when the task returns */
    const double *xs = reef_view_f64s(&view, &n);
    REEF_TRY(xs);
    REEF_TRY(reef_arg_u64(args, 1, &start));
    REEF_TRY(reef_arg_u64(args, 2, &end));
    if (start > end || end > n)
        return reef_fail_code(REEF_CODE_BAD_ARGUMENT, "range %llu..%llu is outside 0..%zu",
                         (unsigned long long)start, (unsigned long long)end, n);
    return reef_return_f64(out, reef_f64_sum(xs + start, (size_t)(end - start)));
}

/* noop() -> nil */
static int noop(const reef_args *args, reef_out *out) { return reef_return_nil(out); }

/* echo(data) -> data: argument 0's raw bytes (inline or an object), unchanged. */
static int echo(const reef_args *args, reef_out *out) {
    const uint8_t *data;
    size_t len;
    REEF_TRY(reef_arg_bytes(args, 0, &data, &len));
    return reef_return_bytes(out, data, len);
}

/* add(a: f64, b: f64) -> f64 */
static int add(const reef_args *args, reef_out *out) {
    double a, b;
    REEF_TRY(reef_arg_f64(args, 0, &a));
    REEF_TRY(reef_arg_f64(args, 1, &b));
    return reef_return_f64(out, a + b);
}

/* fail(msg: str): fails the task with msg, C's way (an error return). */
static int fail(const reef_args *args, reef_out *out) {
    const char *msg;
    REEF_TRY(reef_arg_str(args, 0, &msg, NULL));
    return reef_fail("%s", msg);
}

/* The Accumulator actor, written in C++ (accumulator.cpp). */
int accumulator_init(const reef_args *args, void **self);
int accumulator_add(void *self, const reef_args *args, reef_out *out);
int accumulator_total(void *self, const reef_args *args, reef_out *out);

static const reef_method accumulator_methods[] = {
    REEF_METHOD("add", accumulator_add),
    REEF_METHOD("total", accumulator_total),
};

static const reef_task tasks[] = {
    REEF_TASK(sum_slice), REEF_TASK(noop), REEF_TASK(echo), REEF_TASK(add), REEF_TASK(fail),
};

static const reef_actor_class actors[] = {
    REEF_ACTOR("Accumulator", accumulator_init, accumulator_methods),
};

REEF_MODULE(tasks, actors);

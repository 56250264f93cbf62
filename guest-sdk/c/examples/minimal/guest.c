#include <reef.h>
#include <stdlib.h>

/* sum_slice(xs: object of f64, start: u64, end: u64) -> f64, through a zero-copy view. */
static int sum_slice(const reef_args *args, reef_out *out) {
    reef_view view;
    uint64_t start, end;
    size_t n;
    REEF_TRY(reef_arg_view(args, 0, &view));    /* maps the object; released at return */
    const double *xs = reef_view_f64s(&view, &n);
    REEF_TRY(xs);
    REEF_TRY(reef_arg_u64(args, 1, &start));
    REEF_TRY(reef_arg_u64(args, 2, &end));
    if (start > end || end > n)
        return reef_fail_code(REEF_CODE_BAD_ARGUMENT, "range %llu..%llu is outside 0..%zu",
                         (unsigned long long)start, (unsigned long long)end, n);
    double sum = 0;
    for (uint64_t i = start; i < end; i++)
        sum += xs[i];
    return reef_return_f64(out, sum);
}

/* add(a: f64, b: f64) -> f64 */
static int add(const reef_args *args, reef_out *out) {
    double a, b;
    REEF_TRY(reef_arg_f64(args, 0, &a));
    REEF_TRY(reef_arg_f64(args, 1, &b));
    return reef_return_f64(out, a + b);
}

/* Actor Accumulator(initial: f64 = 0): add(x: f64) -> f64, total() -> f64. */
typedef struct { double total; } accumulator;

static int acc_init(const reef_args *args, void **self) {
    accumulator *acc = calloc(1, sizeof *acc);
    if (!acc)
        return reef_fail("out of memory");
    if (!reef_arg_is_nil(args, 0) && !reef_arg_f64(args, 0, &acc->total)) {
        free(acc);
        return REEF_ERR;
    }
    *self = acc;
    return REEF_OK;
}

static int acc_add(void *self, const reef_args *args, reef_out *out) {
    double x;
    REEF_TRY(reef_arg_f64(args, 0, &x));
    return reef_return_f64(out, ((accumulator *)self)->total += x);
}

static int acc_total(void *self, const reef_args *args, reef_out *out) {
    return reef_return_f64(out, ((accumulator *)self)->total);
}

static const reef_method acc_methods[] = {
    REEF_METHOD("add", acc_add),
    REEF_METHOD("total", acc_total),
};

static const reef_task tasks[] = { REEF_TASK(sum_slice), REEF_TASK(add) };
static const reef_actor_class actors[] = { REEF_ACTOR("Accumulator", acc_init, acc_methods) };

REEF_MODULE(tasks, actors);   /* or REEF_MODULE_TASKS(tasks) without actors */

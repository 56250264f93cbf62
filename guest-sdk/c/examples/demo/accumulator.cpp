// Actor Accumulator(initial: f64 = 0): add(x: f64) -> f64 (the running total), total() -> f64.
// Written in C++ to show that reef.h works from C++ (its declarations are extern "C").
#include <reef.h>

#include <new>

namespace {

class Accumulator {
  public:
    explicit Accumulator(double initial) : total_(initial) {}
    double add(double x) { return total_ += x; }
    double total() const { return total_; }

  private:
    double total_;
};

}  // namespace

extern "C" int accumulator_init(const reef_args *args, void **self) {
    double initial = 0;
    if (!reef_arg_is_nil(args, 0))
        REEF_TRY(reef_arg_f64(args, 0, &initial));
    Accumulator *acc = new (std::nothrow) Accumulator(initial);
    if (!acc)
        return reef_fail("out of memory");
    *self = acc;
    return REEF_OK;
}

extern "C" int accumulator_add(void *self, const reef_args *args, reef_out *out) {
    double x;
    REEF_TRY(reef_arg_f64(args, 0, &x));
    return reef_return_f64(out, static_cast<Accumulator *>(self)->add(x));
}

extern "C" int accumulator_total(void *self, const reef_args *args, reef_out *out) {
    return reef_return_f64(out, static_cast<Accumulator *>(self)->total());
}

// A module written only in C++: REEF_MODULE_TASKS, tasks, the MessagePack writer and
// libc++ (std::string, std::vector, std::sort).
#include <reef.h>

#include <algorithm>
#include <string>
#include <vector>

namespace {

// greet(name: str) -> str: "hello, <name>"
int greet(const reef_args *args, reef_out *out) {
    const char *name;
    REEF_TRY(reef_arg_str(args, 0, &name, nullptr));
    std::string text = std::string("hello, ") + name;
    return reef_return_strn(out, text.data(), text.size());
}

// sorted(xs: array of i64) -> array of i64, ascending
int sorted(const reef_args *args, reef_out *out) {
    reef_reader r;
    uint32_t n;
    REEF_TRY(reef_arg_reader(args, 0, &r));
    if (!reef_read_array(&r, &n))
        return reef_fail_code(REEF_CODE_BAD_ARGUMENT, "argument 0: %s", reef_error());
    std::vector<int64_t> xs(n);
    for (auto &x : xs)
        if (!reef_read_i64(&r, &x))
            return reef_fail_code(REEF_CODE_BAD_ARGUMENT, "argument 0: %s", reef_error());
    std::sort(xs.begin(), xs.end());
    reef_writer w;
    reef_writer_init(&w);
    reef_write_array(&w, n);
    for (int64_t x : xs)
        reef_write_i64(&w, x);
    return reef_return_msgpack(out, &w);
}

const reef_task tasks[] = {REEF_TASK(greet), REEF_TASK(sorted)};

}  // namespace

REEF_MODULE_TASKS(tasks);

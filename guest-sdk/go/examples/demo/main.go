// Demo guest in Go: the same tasks and actor as the Rust demo (examples/guests/demo).
// Structured arguments and results are MessagePack; "object" means an object argument.
package main

import (
	"fmt"

	reef "reef.dev/guest"
)

// sumSlice is sum_slice(xs: object of f64, start: u64, end: u64) -> f64: it sums
// xs[start:end] through a zero-copy view.
func sumSlice(args reef.Args) (any, error) {
	view, err := args.View(0)
	if err != nil {
		return nil, err
	}
	defer view.Release()
	xs, err := view.Float64s()
	if err != nil {
		return nil, err
	}
	start, end, err := sliceRange(args, len(xs))
	if err != nil {
		return nil, err
	}
	total := 0.0
	for _, x := range xs[start:end] {
		total += x
	}
	return total, nil
}

// sumCopy is sum_slice through a copy of the object (host get), for comparison.
func sumCopy(args reef.Args) (any, error) {
	data, err := args.Bytes(0)
	if err != nil {
		return nil, err
	}
	if len(data)%8 != 0 {
		return nil, fmt.Errorf("argument 0: %d bytes is not a whole number of f64s", len(data))
	}
	start, end, err := sliceRange(args, len(data)/8)
	if err != nil {
		return nil, err
	}
	view, err := reef.Float64s(data)
	if err != nil {
		return nil, err
	}
	total := 0.0
	for _, x := range view[start:end] {
		total += x
	}
	return total, nil
}

// sliceRange returns arguments 1 and 2 as a range inside [0, n].
func sliceRange(args reef.Args, n int) (int, int, error) {
	start, err := args.Uint64(1)
	if err != nil {
		return 0, 0, err
	}
	end, err := args.Uint64(2)
	if err != nil {
		return 0, 0, err
	}
	if start > end || end > uint64(n) {
		return 0, 0, reef.Errorf(reef.CodeBadArgument, "range %d..%d is outside 0..%d", start, end, n)
	}
	return int(start), int(end), nil
}

// viewLen is view_len(obj: object) -> u64: maps a view and returns its length.
func viewLen(args reef.Args) (any, error) {
	view, err := args.View(0)
	if err != nil {
		return nil, err
	}
	return uint64(view.Len()), nil
}

// Accumulator is actor Accumulator(initial: f64 = 0).
type Accumulator struct {
	total float64
}

// NewAccumulator creates an Accumulator.
func NewAccumulator(args reef.Args) (*Accumulator, error) {
	acc := &Accumulator{}
	if !args.IsNil(0) {
		initial, err := args.Float64(0)
		if err != nil {
			return nil, err
		}
		acc.total = initial
	}
	return acc, nil
}

// Add is add(x: f64) -> f64: the running total.
func (a *Accumulator) Add(args reef.Args) (float64, error) {
	x, err := args.Float64(0)
	if err != nil {
		return 0, err
	}
	a.total += x
	return a.total, nil
}

// Total is total() -> f64.
func (a *Accumulator) Total(reef.Args) float64 {
	return a.total
}

func init() {
	reef.Task("sum_slice", sumSlice)
	reef.Task("sum_copy", sumCopy)
	reef.Task("view_len", viewLen)
	reef.Task("noop", func(reef.Args) (any, error) { return nil, nil })
	// echo(data) -> data: argument 0's raw bytes (inline or object), unchanged.
	reef.Task("echo", func(args reef.Args) (any, error) {
		data, err := args.Bytes(0)
		return reef.Raw(data), err
	})
	// add(a: f64, b: f64) -> f64.
	reef.Task("add", func(args reef.Args) (any, error) {
		a, err := args.Float64(0)
		if err != nil {
			return nil, err
		}
		b, err := args.Float64(1)
		if err != nil {
			return nil, err
		}
		return a + b, nil
	})
	// fail(msg: str) panics with msg, the Go way.
	reef.Task("fail", func(args reef.Args) (any, error) {
		msg, err := args.String(0)
		if err != nil {
			return nil, err
		}
		panic(msg)
	})
	reef.Actor("Accumulator", NewAccumulator)
}

func main() {}

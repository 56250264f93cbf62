// Nested guest in Go: tasks that use the host from inside a task (put, get, views,
// submit, actors, logs), for the SDK's integration tests.
package main

import (
	"fmt"

	reef "reef.dev/guest"
)

// Counter is actor Counter(start: u64 = 0): add(n: u64) -> u64, get() -> u64.
type Counter struct{ n uint64 }

// Add adds n and returns the new count.
func (c *Counter) Add(args reef.Args) (uint64, error) {
	n, err := args.Uint64(0)
	c.n += n
	return c.n, err
}

// Churn(data: bytes, rounds: u64) -> u64 makes garbage (rounds copies of data) so that
// the garbage collector runs inside the call; returns the length of data.
func (c *Counter) Churn(args reef.Args) (uint64, error) {
	data, err := args.Bytes(0)
	if err != nil {
		return 0, err
	}
	rounds, err := args.Uint64(1)
	if err != nil {
		return 0, err
	}
	var keep [][]byte
	for i := uint64(0); i < rounds; i++ {
		keep = append(keep[:0], append([]byte(nil), data...))
	}
	c.n++
	return uint64(len(data)), nil
}

// Boom(msg: str) panics with msg (a Go panic inside an actor method).
func (c *Counter) Boom(args reef.Args) error {
	msg, err := args.String(0)
	if err != nil {
		return err
	}
	var m map[string]int
	if msg == "nil map" {
		m["x"] = 1 // a runtime error: assignment to entry in nil map
	}
	panic(msg)
}

// Get returns the count.
func (c *Counter) Get(reef.Args) uint64 { return c.n }

func newCounter(args reef.Args) (*Counter, error) {
	if args.IsNil(0) {
		return &Counter{}, nil
	}
	n, err := args.Uint64(0)
	return &Counter{n}, err
}

// getF64 reads a task result (MessagePack float64).
func getF64(id reef.ObjectID) (float64, error) {
	var x float64
	return x, reef.GetValue(id, &x)
}

func init() {
	// add(a: f64, b: f64) -> f64.
	reef.Task("add", func(args reef.Args) (any, error) {
		a, err := args.Float64(0)
		if err != nil {
			return nil, err
		}
		b, err := args.Float64(1)
		return a + b, err
	})
	// put_get(data) -> data: Put, then Get (a copy) back, raw.
	reef.Task("put_get", func(args reef.Args) (any, error) {
		data, err := args.Bytes(0)
		if err != nil {
			return nil, err
		}
		ref, err := reef.Put(data)
		if err != nil {
			return nil, err
		}
		back, err := reef.Get(ref.ID)
		return reef.Raw(back), err
	})
	// make_range(n: u64) -> object of f64 0..n, returned by reference.
	reef.Task("make_range", func(args reef.Args) (any, error) {
		n, err := args.Uint64(0)
		if err != nil {
			return nil, err
		}
		xs := make([]float64, n)
		for i := range xs {
			xs[i] = float64(i)
		}
		return reef.PutFloat64s(xs)
	})
	// range_sum(n: u64) -> f64: puts 0..n as an object, then sums it through a view.
	reef.Task("range_sum", func(args reef.Args) (any, error) {
		n, err := args.Uint64(0)
		if err != nil {
			return nil, err
		}
		xs := make([]float64, n)
		for i := range xs {
			xs[i] = float64(i)
		}
		ref, err := reef.PutFloat64s(xs)
		if err != nil {
			return nil, err
		}
		view, err := reef.MapView(ref)
		if err != nil {
			return nil, err
		}
		defer view.Release()
		ys, err := view.Float64s()
		if err != nil {
			return nil, err
		}
		total := 0.0
		for _, y := range ys {
			total += y
		}
		return total, nil
	})
	// submit_add(a: f64, b: f64) -> f64: submits add of this module and waits for it.
	reef.Task("submit_add", func(args reef.Args) (any, error) {
		a, err := args.Float64(0)
		if err != nil {
			return nil, err
		}
		b, err := args.Float64(1)
		if err != nil {
			return nil, err
		}
		id, err := reef.Submit("add", a, b)
		if err != nil {
			return nil, err
		}
		return getF64(id)
	})
	// counter(name: str, start: u64, n: u64) -> u64: creates a named Counter, finds it by
	// name, adds n through the found handle and returns the count.
	reef.Task("counter", func(args reef.Args) (any, error) {
		name, err := args.String(0)
		if err != nil {
			return nil, err
		}
		start, err := args.Uint64(1)
		if err != nil {
			return nil, err
		}
		n, err := args.Uint64(2)
		if err != nil {
			return nil, err
		}
		if _, err := reef.CreateActor("", "Counter", name, start); err != nil {
			return nil, err
		}
		actor, err := reef.LookupActor(name)
		if err != nil {
			return nil, err
		}
		id, err := actor.Call("add", n)
		if err != nil {
			return nil, err
		}
		data, err := reef.Get(id)
		if err != nil {
			return nil, err
		}
		var count uint64
		return count, reef.Unmarshal(data, &count)
	})
	// log(msg: str) -> nil: writes msg to the task's log and "stdout: msg" to stdout.
	reef.Task("log", func(args reef.Args) (any, error) {
		msg, err := args.String(0)
		if err != nil {
			return nil, err
		}
		reef.Log(reef.LevelInfo, msg)
		fmt.Println("stdout: " + msg)
		return nil, nil
	})
	// get_missing(id: u64) -> error: Get of an object that does not exist.
	reef.Task("get_missing", func(args reef.Args) (any, error) {
		id, err := args.Uint64(0)
		if err != nil {
			return nil, err
		}
		return reef.Get(id)
	})
	// describe_value(x) -> str: the generic decoding of argument 0, printed.
	reef.Task("describe_value", func(args reef.Args) (any, error) {
		v, err := args.Value(0)
		return fmt.Sprintf("%s %v", reef.TypeName(v), v), err
	})
	reef.Actor("Counter", newCounter)
}

func main() {}

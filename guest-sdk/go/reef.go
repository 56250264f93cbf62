// Package reef is the Go guest SDK of Reef: write tasks and actors in Go, build them with
// GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared (guest-sdk/go/build.sh), and
// register the module with a Reef node.
//
//	package main
//
//	import reef "reef.dev/guest"
//
//	func init() {
//		reef.Task("add", func(args reef.Args) (any, error) {
//			a, err := args.Float64(0)
//			if err != nil {
//				return nil, err
//			}
//			b, err := args.Float64(1)
//			if err != nil {
//				return nil, err
//			}
//			return a + b, nil
//		})
//	}
//
//	func main() {}
//
// Tasks and actor classes are registered in init functions (a module is a WASI reactor:
// main is never called). Results are encoded as MessagePack (see Marshal), except Raw
// (raw bytes) and ObjectRef (an object, by reference).
package reef

import (
	"fmt"
	"reflect"
	"sort"
	"strings"
	"unicode"
)

// SDK is the sdk string reported by describe.
const SDK = "reef-guest-go/0.1.0"

// TaskFunc is a task: it receives the call's arguments and returns a result (see Task).
type TaskFunc func(args Args) (any, error)

type task struct {
	name string
	run  TaskFunc
}

type method struct {
	name string
	fn   reflect.Method
}

type actorClass struct {
	name    string
	ctor    func(Args) (any, error)
	methods []method
}

var (
	tasks   []task
	classes []actorClass
	// actor is the state of this instance's actor (set by actor-init).
	actor      reflect.Value
	actorIndex = -1
)

// Task registers a task under name. Call it from an init function.
//
// The result is encoded as MessagePack (nil becomes nil, float64 a float64, ints the
// shortest integer, string a str, []byte a bin, slices arrays, maps and structs maps), or
// passed as is when it is Raw (raw bytes) or ObjectRef (an object, by reference, e.g. one
// created with Put). A non-nil error fails the task with err.Error() and the code of the
// *Error in its chain (CodeOf: CodeGuestError when there is none); see Errorf.
func Task(name string, fn TaskFunc) {
	for _, t := range tasks {
		if t.name == name {
			panic(fmt.Sprintf("reef: task %q registered twice", name))
		}
	}
	tasks = append(tasks, task{name, fn})
}

// Actor registers an actor class. ctor builds the actor's state from the creation
// arguments; T is usually a pointer to a struct. Every exported method of T with one of
// the signatures
//
//	func (a T) M(args reef.Args) (R, error)
//	func (a T) M(args reef.Args) R
//	func (a T) M(args reef.Args) error
//	func (a T) M(args reef.Args)
//
// is a method of the class, exported under its snake_case name (Add -> "add", TopN ->
// "top_n", MergeCounts -> "merge_counts"). Results are encoded as task results are.
// Exported methods with other parameters are not exported to Reef. Call Actor from an
// init function.
func Actor[T any](class string, ctor func(args Args) (T, error)) {
	for _, c := range classes {
		if c.name == class {
			panic(fmt.Sprintf("reef: actor class %q registered twice", class))
		}
	}
	typ := reflect.TypeFor[T]()
	argsType := reflect.TypeFor[Args]()
	errType := reflect.TypeFor[error]()
	var methods []method
	for i := 0; i < typ.NumMethod(); i++ {
		m := typ.Method(i)
		ft := m.Type // includes the receiver
		if ft.NumIn() != 2 || ft.In(1) != argsType {
			continue
		}
		switch {
		case ft.NumOut() == 0:
		case ft.NumOut() == 1:
		case ft.NumOut() == 2 && ft.Out(1) == errType:
		default:
			panic(fmt.Sprintf("reef: method %s.%s must return (R, error), R, error or nothing", class, m.Name))
		}
		methods = append(methods, method{name: SnakeCase(m.Name), fn: m})
	}
	sort.Slice(methods, func(a, b int) bool { return methods[a].name < methods[b].name })
	classes = append(classes, actorClass{
		name:    class,
		ctor:    func(a Args) (any, error) { return ctor(a) },
		methods: methods,
	})
}

// SnakeCase converts a Go identifier to the snake_case name methods are exported under.
func SnakeCase(name string) string {
	var b strings.Builder
	runes := []rune(name)
	for i, r := range runes {
		if unicode.IsUpper(r) {
			if i > 0 && (unicode.IsLower(runes[i-1]) || unicode.IsDigit(runes[i-1]) ||
				(i+1 < len(runes) && unicode.IsLower(runes[i+1]))) {
				b.WriteByte('_')
			}
			b.WriteRune(unicode.ToLower(r))
		} else {
			b.WriteRune(r)
		}
	}
	return b.String()
}

func taskNames() []string {
	names := make([]string, len(tasks))
	for i, t := range tasks {
		names[i] = t.name
	}
	return names
}

func classNames() ([]string, [][]string) {
	names := make([]string, len(classes))
	methods := make([][]string, len(classes))
	for i, c := range classes {
		names[i] = c.name
		for _, m := range c.methods {
			methods[i] = append(methods[i], m.name)
		}
	}
	return names, methods
}

// runTask runs the task name with args.
func runTask(name string, args Args) (output, error) {
	for _, t := range tasks {
		if t.name == name {
			v, err := t.run(args)
			if err != nil {
				return output{}, err
			}
			return encodeResult(v)
		}
	}
	return output{}, Errorf(CodeUnknownFunction, "unknown task `%s` (this module has: %s)",
		name, strings.Join(taskNames(), ", "))
}

// initActor creates this instance's actor of class.
func initActor(class string, args Args) error {
	if actorIndex >= 0 {
		return fmt.Errorf("this instance already holds an actor")
	}
	for i, c := range classes {
		if c.name == class {
			state, err := c.ctor(args)
			if err != nil {
				return err
			}
			actor = reflect.ValueOf(state)
			actorIndex = i
			return nil
		}
	}
	names, _ := classNames()
	return Errorf(CodeUnknownFunction, "unknown actor class `%s` (this module has: %s)",
		class, strings.Join(names, ", "))
}

// callActor calls method of this instance's actor.
func callActor(name string, args Args) (output, error) {
	if actorIndex < 0 {
		return output{}, fmt.Errorf("actor-call before actor-init")
	}
	class := &classes[actorIndex]
	for _, m := range class.methods {
		if m.name != name {
			continue
		}
		outs := m.fn.Func.Call([]reflect.Value{actor, reflect.ValueOf(args)})
		var result any
		for _, o := range outs {
			if o.Type() == reflect.TypeFor[error]() {
				if !o.IsNil() {
					return output{}, o.Interface().(error)
				}
			} else {
				result = o.Interface()
			}
		}
		return encodeResult(result)
	}
	_, methods := classNames()
	return output{}, Errorf(CodeUnknownFunction, "actor class `%s` has no method `%s` (it has: %s)",
		class.name, name, strings.Join(methods[actorIndex], ", "))
}

// Raw is a result or argument passed as raw bytes, not MessagePack.
type Raw []byte

// encodeResult turns a task's result into an output.
func encodeResult(v any) (output, error) {
	switch x := v.(type) {
	case Raw:
		return output{bytes: []byte(x)}, nil
	case ObjectRef:
		return output{isObject: true, object: x.ID}, nil
	case *ObjectRef:
		if x != nil {
			return output{isObject: true, object: x.ID}, nil
		}
	}
	b, err := Marshal(v)
	if err != nil {
		return output{}, fmt.Errorf("encoding the result: %w", err)
	}
	return output{bytes: b}, nil
}

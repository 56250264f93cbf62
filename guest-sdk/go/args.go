package reef

import (
	"fmt"
	"reflect"
	"unicode/utf8"
)

// Args are the arguments of a task or actor-method call.
//
// Structured arguments are MessagePack; the typed accessors (Float64, Uint64, String,
// Decode, ...) decode them, whether the argument came inline or as an object (e.g. the
// result of another task). Every accessor's error is an *Error with CodeBadArgument and a
// message starting "argument i:", so a task can return it as is.
type Args struct {
	items []rawArg
}

// NewArgs builds arguments from Go values as Submit would pass them (for unit tests of
// tasks outside a worker: Raw and MessagePack values only, objects need a host).
func NewArgs(values ...any) (Args, error) {
	items, err := toArgs(values)
	return Args{items: items}, err
}

func argError(i int, format string, a ...any) error {
	return &Error{Code: CodeBadArgument, Message: fmt.Sprintf("argument %d: %s", i, fmt.Sprintf(format, a...))}
}

// Len is the number of arguments.
func (a Args) Len() int { return len(a.items) }

func (a Args) arg(i int) (rawArg, error) {
	if i < 0 || i >= len(a.items) {
		return rawArg{}, argError(i, "missing (the call has %d arguments)", len(a.items))
	}
	return a.items[i], nil
}

// IsObject reports whether argument i was passed as an object.
func (a Args) IsObject(i int) bool {
	return i >= 0 && i < len(a.items) && a.items[i].isObject
}

// IsNil reports whether argument i is missing or MessagePack nil (for optional arguments).
func (a Args) IsNil(i int) bool {
	if i < 0 || i >= len(a.items) {
		return true
	}
	it := a.items[i]
	return !it.isObject && len(it.inline) == 1 && it.inline[0] == 0xc0
}

// Bytes returns argument i's raw bytes: the inline bytes, or a copy of the object (host
// get). Use View for large objects.
func (a Args) Bytes(i int) ([]byte, error) {
	it, err := a.arg(i)
	if err != nil {
		return nil, err
	}
	if !it.isObject {
		return it.inline, nil
	}
	b, err := Get(it.object.ID)
	if err != nil {
		return nil, withContext(err, fmt.Sprintf("argument %d", i))
	}
	return b, nil
}

// Text returns argument i's raw bytes as UTF-8 text (not MessagePack; see String).
func (a Args) Text(i int) (string, error) {
	b, err := a.Bytes(i)
	if err != nil {
		return "", err
	}
	if !utf8.Valid(b) {
		return "", argError(i, "not valid UTF-8 text")
	}
	return string(b), nil
}

// Value returns argument i decoded as a generic MessagePack value (see Decode).
func (a Args) Value(i int) (any, error) {
	b, err := a.Bytes(i)
	if err != nil {
		return nil, err
	}
	v, err := Decode(b)
	if err != nil {
		return nil, argError(i, "%v", err)
	}
	return v, nil
}

// Decode decodes argument i into the value ptr points to (see Unmarshal), e.g.
// var counts map[string]uint64; err := args.Decode(0, &counts).
func (a Args) Decode(i int, ptr any) error {
	v, err := a.Value(i)
	if err != nil {
		return err
	}
	rv := reflect.ValueOf(ptr)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return fmt.Errorf("Args.Decode needs a non-nil pointer, got %T", ptr)
	}
	if err := assign(rv.Elem(), v); err != nil {
		return argError(i, "%v", err)
	}
	return nil
}

func typed[T any](a Args, i int) (T, error) {
	var out T
	v, err := a.Value(i)
	if err != nil {
		return out, err
	}
	if v == nil {
		return out, argError(i, "%v", mismatch(reflect.TypeFor[T](), v))
	}
	if err := assign(reflect.ValueOf(&out).Elem(), v); err != nil {
		return out, argError(i, "%v", err)
	}
	return out, nil
}

// Float64 returns argument i as a float64 (integers are converted).
func (a Args) Float64(i int) (float64, error) { return typed[float64](a, i) }

// Float32 returns argument i as a float32.
func (a Args) Float32(i int) (float32, error) { return typed[float32](a, i) }

// Uint64 returns argument i as an unsigned integer.
func (a Args) Uint64(i int) (uint64, error) { return typed[uint64](a, i) }

// Int64 returns argument i as a signed integer.
func (a Args) Int64(i int) (int64, error) { return typed[int64](a, i) }

// Int returns argument i as an int.
func (a Args) Int(i int) (int, error) { return typed[int](a, i) }

// Bool returns argument i as a boolean.
func (a Args) Bool(i int) (bool, error) { return typed[bool](a, i) }

// String returns argument i as a MessagePack string.
func (a Args) String(i int) (string, error) { return typed[string](a, i) }

// Bin returns argument i as MessagePack bin (or str) bytes; compare Bytes (raw bytes).
func (a Args) Bin(i int) ([]byte, error) { return typed[[]byte](a, i) }

// Object returns object argument i (an error if it was passed inline).
func (a Args) Object(i int) (ObjectRef, error) {
	it, err := a.arg(i)
	if err != nil {
		return ObjectRef{}, err
	}
	if !it.isObject {
		return ObjectRef{}, argError(i, "expected an object, got %d inline bytes", len(it.inline))
	}
	return it.object, nil
}

// View maps object argument i as a zero-copy View (released at the end of the call, or
// by View.Release).
func (a Args) View(i int) (*View, error) {
	o, err := a.Object(i)
	if err != nil {
		return nil, err
	}
	return MapView(o)
}

package reef

// A small, dependency-free MessagePack codec (docs/encoding.md): Marshal encodes Go
// values, Unmarshal decodes into Go values, Decode into generic values.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"reflect"
	"sort"
	"strings"
)

// Marshal encodes v as MessagePack: nil -> nil; bool; signed and unsigned integers in
// the shortest form; float32 -> float 32; float64 -> float 64; string -> str; []byte and
// Raw -> bin; slices and arrays -> array; maps -> map (string keys sorted); structs ->
// map of exported fields (named by a `msgpack:"name"` tag, or the field name; "-" skips
// a field); pointers and interfaces -> what they hold.
func Marshal(v any) ([]byte, error) {
	var e encoder
	if err := e.encode(reflect.ValueOf(v)); err != nil {
		return nil, err
	}
	return e.buf, nil
}

type encoder struct {
	buf []byte
}

func (e *encoder) byte1(b byte) { e.buf = append(e.buf, b) }
func (e *encoder) be16(v uint16) {
	e.buf = binary.BigEndian.AppendUint16(e.buf, v)
}
func (e *encoder) be32(v uint32) {
	e.buf = binary.BigEndian.AppendUint32(e.buf, v)
}
func (e *encoder) be64(v uint64) {
	e.buf = binary.BigEndian.AppendUint64(e.buf, v)
}

func (e *encoder) uint(v uint64) {
	switch {
	case v < 128:
		e.byte1(byte(v))
	case v <= math.MaxUint8:
		e.byte1(0xcc)
		e.byte1(byte(v))
	case v <= math.MaxUint16:
		e.byte1(0xcd)
		e.be16(uint16(v))
	case v <= math.MaxUint32:
		e.byte1(0xce)
		e.be32(uint32(v))
	default:
		e.byte1(0xcf)
		e.be64(v)
	}
}

func (e *encoder) int(v int64) {
	switch {
	case v >= 0:
		e.uint(uint64(v))
	case v >= -32:
		e.byte1(byte(v))
	case v >= math.MinInt8:
		e.byte1(0xd0)
		e.byte1(byte(v))
	case v >= math.MinInt16:
		e.byte1(0xd1)
		e.be16(uint16(v))
	case v >= math.MinInt32:
		e.byte1(0xd2)
		e.be32(uint32(v))
	default:
		e.byte1(0xd3)
		e.be64(uint64(v))
	}
}

func (e *encoder) str(s string) {
	n := len(s)
	switch {
	case n < 32:
		e.byte1(0xa0 | byte(n))
	case n <= math.MaxUint8:
		e.byte1(0xd9)
		e.byte1(byte(n))
	case n <= math.MaxUint16:
		e.byte1(0xda)
		e.be16(uint16(n))
	default:
		e.byte1(0xdb)
		e.be32(uint32(n))
	}
	e.buf = append(e.buf, s...)
}

func (e *encoder) bin(b []byte) {
	n := len(b)
	switch {
	case n <= math.MaxUint8:
		e.byte1(0xc4)
		e.byte1(byte(n))
	case n <= math.MaxUint16:
		e.byte1(0xc5)
		e.be16(uint16(n))
	default:
		e.byte1(0xc6)
		e.be32(uint32(n))
	}
	e.buf = append(e.buf, b...)
}

func (e *encoder) arrayHeader(n int) {
	switch {
	case n < 16:
		e.byte1(0x90 | byte(n))
	case n <= math.MaxUint16:
		e.byte1(0xdc)
		e.be16(uint16(n))
	default:
		e.byte1(0xdd)
		e.be32(uint32(n))
	}
}

func (e *encoder) mapHeader(n int) {
	switch {
	case n < 16:
		e.byte1(0x80 | byte(n))
	case n <= math.MaxUint16:
		e.byte1(0xde)
		e.be16(uint16(n))
	default:
		e.byte1(0xdf)
		e.be32(uint32(n))
	}
}

var bytesType = reflect.TypeFor[[]byte]()

func (e *encoder) encode(v reflect.Value) error {
	if !v.IsValid() {
		e.byte1(0xc0)
		return nil
	}
	switch v.Kind() {
	case reflect.Bool:
		if v.Bool() {
			e.byte1(0xc3)
		} else {
			e.byte1(0xc2)
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		e.int(v.Int())
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		e.uint(v.Uint())
	case reflect.Float32:
		e.byte1(0xca)
		e.be32(math.Float32bits(float32(v.Float())))
	case reflect.Float64:
		e.byte1(0xcb)
		e.be64(math.Float64bits(v.Float()))
	case reflect.String:
		e.str(v.String())
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			e.byte1(0xc0)
			return nil
		}
		return e.encode(v.Elem())
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			e.bin(v.Bytes())
			return nil
		}
		if v.IsNil() {
			e.byte1(0xc0)
			return nil
		}
		fallthrough
	case reflect.Array:
		if v.Kind() == reflect.Array && v.Type().Elem().Kind() == reflect.Uint8 {
			b := make([]byte, v.Len())
			reflect.Copy(reflect.ValueOf(b), v)
			e.bin(b)
			return nil
		}
		e.arrayHeader(v.Len())
		for i := 0; i < v.Len(); i++ {
			if err := e.encode(v.Index(i)); err != nil {
				return err
			}
		}
	case reflect.Map:
		if v.IsNil() {
			e.byte1(0xc0)
			return nil
		}
		keys := v.MapKeys()
		if v.Type().Key().Kind() == reflect.String {
			sort.Slice(keys, func(a, b int) bool { return keys[a].String() < keys[b].String() })
		}
		e.mapHeader(len(keys))
		for _, k := range keys {
			if err := e.encode(k); err != nil {
				return err
			}
			if err := e.encode(v.MapIndex(k)); err != nil {
				return err
			}
		}
	case reflect.Struct:
		fields := structFields(v.Type())
		e.mapHeader(len(fields))
		for _, f := range fields {
			e.str(f.name)
			if err := e.encode(v.Field(f.index)); err != nil {
				return err
			}
		}
	default:
		return fmt.Errorf("cannot encode a %s as MessagePack", v.Type())
	}
	return nil
}

type field struct {
	name  string
	index int
}

func structFields(t reflect.Type) []field {
	var out []field
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name := f.Name
		if tag, ok := f.Tag.Lookup("msgpack"); ok {
			tag, _, _ = strings.Cut(tag, ",")
			if tag == "-" {
				continue
			}
			if tag != "" {
				name = tag
			}
		}
		out = append(out, field{name, i})
	}
	return out
}

// Decode decodes one MessagePack value into generic Go values: nil, bool, int64 (any
// integer that fits), uint64 (larger ones), float64 (float 32 and 64), string, []byte
// (bin), []any (array), map[string]any (a map whose keys are all strings) or map[any]any
// (other maps; array or map keys are an error). Trailing bytes are an error.
func Decode(data []byte) (any, error) {
	d := decoder{data: data}
	v, err := d.value(0)
	if err != nil {
		return nil, err
	}
	if d.pos != len(d.data) {
		return nil, fmt.Errorf("invalid MessagePack: %d trailing bytes", len(d.data)-d.pos)
	}
	return v, nil
}

// Unmarshal decodes MessagePack data into the value ptr points to, converting as
// needed: integers to any integer type that holds them (and to floats), str or bin to
// string or []byte, arrays to slices and arrays, maps to maps and structs (by field name
// or msgpack tag), nil to the zero value.
func Unmarshal(data []byte, ptr any) error {
	rv := reflect.ValueOf(ptr)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return errors.New("Unmarshal needs a non-nil pointer")
	}
	v, err := Decode(data)
	if err != nil {
		return err
	}
	return assign(rv.Elem(), v)
}

const maxDepth = 512

type decoder struct {
	data []byte
	pos  int
}

var errShort = errors.New("invalid MessagePack: truncated")

func (d *decoder) take(n int) ([]byte, error) {
	if n < 0 || len(d.data)-d.pos < n {
		return nil, errShort
	}
	b := d.data[d.pos : d.pos+n]
	d.pos += n
	return b, nil
}

func (d *decoder) uintN(n int) (uint64, error) {
	b, err := d.take(n)
	if err != nil {
		return 0, err
	}
	var v uint64
	for _, c := range b {
		v = v<<8 | uint64(c)
	}
	return v, nil
}

func (d *decoder) value(depth int) (any, error) {
	if depth > maxDepth {
		return nil, errors.New("invalid MessagePack: nested too deeply")
	}
	b, err := d.take(1)
	if err != nil {
		return nil, err
	}
	c := b[0]
	switch {
	case c <= 0x7f:
		return int64(c), nil
	case c >= 0xe0:
		return int64(int8(c)), nil
	case c&0xe0 == 0xa0:
		return d.str(int(c & 0x1f))
	case c&0xf0 == 0x90:
		return d.array(int(c&0x0f), depth)
	case c&0xf0 == 0x80:
		return d.mapv(int(c&0x0f), depth)
	}
	switch c {
	case 0xc0:
		return nil, nil
	case 0xc2:
		return false, nil
	case 0xc3:
		return true, nil
	case 0xcc, 0xcd, 0xce, 0xcf:
		v, err := d.uintN(1 << (c - 0xcc))
		if err != nil {
			return nil, err
		}
		if v > math.MaxInt64 {
			return v, nil
		}
		return int64(v), nil
	case 0xd0, 0xd1, 0xd2, 0xd3:
		n := 1 << (c - 0xd0)
		v, err := d.uintN(n)
		if err != nil {
			return nil, err
		}
		shift := 64 - 8*n
		return int64(v<<shift) >> shift, nil
	case 0xca:
		v, err := d.uintN(4)
		return float64(math.Float32frombits(uint32(v))), err
	case 0xcb:
		v, err := d.uintN(8)
		return math.Float64frombits(v), err
	case 0xd9, 0xda, 0xdb:
		n, err := d.uintN(1 << (c - 0xd9))
		if err != nil {
			return nil, err
		}
		return d.str(int(n))
	case 0xc4, 0xc5, 0xc6:
		n, err := d.uintN(1 << (c - 0xc4))
		if err != nil {
			return nil, err
		}
		raw, err := d.take(int(n))
		if err != nil {
			return nil, err
		}
		return append([]byte{}, raw...), nil
	case 0xdc, 0xdd:
		n, err := d.uintN(2 << (c - 0xdc))
		if err != nil {
			return nil, err
		}
		return d.array(int(n), depth)
	case 0xde, 0xdf:
		n, err := d.uintN(2 << (c - 0xde))
		if err != nil {
			return nil, err
		}
		return d.mapv(int(n), depth)
	case 0xd4, 0xd5, 0xd6, 0xd7, 0xd8, 0xc7, 0xc8, 0xc9:
		return nil, fmt.Errorf("MessagePack extension types are not supported (0x%02x)", c)
	}
	return nil, fmt.Errorf("invalid MessagePack: reserved byte 0x%02x", c)
}

func (d *decoder) str(n int) (any, error) {
	b, err := d.take(n)
	if err != nil {
		return nil, err
	}
	return string(b), nil
}

func (d *decoder) array(n, depth int) (any, error) {
	if n > len(d.data)-d.pos {
		return nil, errShort
	}
	out := make([]any, n)
	for i := range out {
		v, err := d.value(depth + 1)
		if err != nil {
			return nil, err
		}
		out[i] = v
	}
	return out, nil
}

func (d *decoder) mapv(n, depth int) (any, error) {
	if n > (len(d.data)-d.pos)/2 {
		return nil, errShort
	}
	keys := make([]any, n)
	vals := make([]any, n)
	allStrings := true
	for i := 0; i < n; i++ {
		k, err := d.value(depth + 1)
		if err != nil {
			return nil, err
		}
		v, err := d.value(depth + 1)
		if err != nil {
			return nil, err
		}
		if _, ok := k.(string); !ok {
			allStrings = false
		}
		keys[i], vals[i] = k, v
	}
	if allStrings {
		m := make(map[string]any, n)
		for i, k := range keys {
			m[k.(string)] = vals[i]
		}
		return m, nil
	}
	m := make(map[any]any, n)
	for i, k := range keys {
		switch k.(type) {
		case []any, map[string]any, map[any]any, []byte:
			return nil, fmt.Errorf("a map key of type %s is not supported", TypeName(k))
		}
		m[k] = vals[i]
	}
	return m, nil
}

// TypeName names the MessagePack type of a decoded value (for error messages).
func TypeName(v any) string {
	switch x := v.(type) {
	case nil:
		return "nil"
	case bool:
		return "bool"
	case int64:
		if x < 0 {
			return "int"
		}
		return "uint"
	case uint64:
		return "uint"
	case float64:
		return "float"
	case string:
		return "str"
	case []byte:
		return "bin"
	case []any:
		return "array"
	case map[string]any, map[any]any:
		return "map"
	}
	return fmt.Sprintf("%T", v)
}

// describeValue renders a decoded value briefly (for error messages).
func describeValue(v any) string {
	var s string
	switch x := v.(type) {
	case string:
		s = fmt.Sprintf("%q", x)
	case []byte:
		s = fmt.Sprintf("%d bytes", len(x))
	case []any:
		s = fmt.Sprintf("%d items", len(x))
	case map[string]any:
		s = fmt.Sprintf("%d entries", len(x))
	case map[any]any:
		s = fmt.Sprintf("%d entries", len(x))
	default:
		s = fmt.Sprint(x)
	}
	if len(s) > 60 {
		s = s[:57] + "..."
	}
	return s
}

// mismatch is the error of assign.
func mismatch(t reflect.Type, v any) error {
	return fmt.Errorf("expected %s, got %s (%s)", kindName(t), TypeName(v), describeValue(v))
}

func kindName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "an integer (" + t.String() + ")"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return "an unsigned integer (" + t.String() + ")"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.String:
		return "a string"
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 {
			return "bytes"
		}
		return "an array"
	case reflect.Map, reflect.Struct:
		return "a map"
	}
	return t.String()
}

// assign stores the generic value v (from Decode) into dst.
func assign(dst reflect.Value, v any) error {
	t := dst.Type()
	if v == nil {
		dst.SetZero()
		return nil
	}
	switch t.Kind() {
	case reflect.Interface:
		rv := reflect.ValueOf(v)
		if !rv.Type().AssignableTo(t) {
			return mismatch(t, v)
		}
		dst.Set(rv)
		return nil
	case reflect.Pointer:
		p := reflect.New(t.Elem())
		if err := assign(p.Elem(), v); err != nil {
			return err
		}
		dst.Set(p)
		return nil
	case reflect.Bool:
		b, ok := v.(bool)
		if !ok {
			return mismatch(t, v)
		}
		dst.SetBool(b)
		return nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		i, ok := v.(int64)
		if !ok || dst.OverflowInt(i) {
			return mismatch(t, v)
		}
		dst.SetInt(i)
		return nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		var u uint64
		switch x := v.(type) {
		case int64:
			if x < 0 {
				return mismatch(t, v)
			}
			u = uint64(x)
		case uint64:
			u = x
		default:
			return mismatch(t, v)
		}
		if dst.OverflowUint(u) {
			return mismatch(t, v)
		}
		dst.SetUint(u)
		return nil
	case reflect.Float32, reflect.Float64:
		switch x := v.(type) {
		case float64:
			dst.SetFloat(x)
		case int64:
			dst.SetFloat(float64(x))
		case uint64:
			dst.SetFloat(float64(x))
		default:
			return mismatch(t, v)
		}
		return nil
	case reflect.String:
		switch x := v.(type) {
		case string:
			dst.SetString(x)
		default:
			return mismatch(t, v)
		}
		return nil
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			switch x := v.(type) {
			case []byte:
				dst.SetBytes(x)
				return nil
			case string:
				dst.SetBytes([]byte(x))
				return nil
			}
		}
		items, ok := v.([]any)
		if !ok {
			return mismatch(t, v)
		}
		s := reflect.MakeSlice(t, len(items), len(items))
		for i, item := range items {
			if err := assign(s.Index(i), item); err != nil {
				return fmt.Errorf("item %d: %w", i, err)
			}
		}
		dst.Set(s)
		return nil
	case reflect.Array:
		items, ok := v.([]any)
		if !ok || len(items) != dst.Len() {
			return mismatch(t, v)
		}
		for i, item := range items {
			if err := assign(dst.Index(i), item); err != nil {
				return fmt.Errorf("item %d: %w", i, err)
			}
		}
		return nil
	case reflect.Map:
		m := reflect.MakeMap(t)
		each := func(k, val any) error {
			kv := reflect.New(t.Key()).Elem()
			if err := assign(kv, k); err != nil {
				return fmt.Errorf("key %s: %w", describeValue(k), err)
			}
			vv := reflect.New(t.Elem()).Elem()
			if err := assign(vv, val); err != nil {
				return fmt.Errorf("value of %s: %w", describeValue(k), err)
			}
			m.SetMapIndex(kv, vv)
			return nil
		}
		switch x := v.(type) {
		case map[string]any:
			for k, val := range x {
				if err := each(k, val); err != nil {
					return err
				}
			}
		case map[any]any:
			for k, val := range x {
				if err := each(k, val); err != nil {
					return err
				}
			}
		default:
			return mismatch(t, v)
		}
		dst.Set(m)
		return nil
	case reflect.Struct:
		x, ok := v.(map[string]any)
		if !ok {
			return mismatch(t, v)
		}
		for _, f := range structFields(t) {
			if val, ok := x[f.name]; ok {
				if err := assign(dst.Field(f.index), val); err != nil {
					return fmt.Errorf("field %s: %w", f.name, err)
				}
			}
		}
		return nil
	}
	return fmt.Errorf("cannot decode MessagePack into a %s", t)
}

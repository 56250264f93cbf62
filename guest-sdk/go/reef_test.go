package reef

// Unit tests that run on the build machine (go test): the MessagePack codec, argument
// accessors, result encoding, actor registration and the transfer arena. The host side
// is covered by tests/tests/conformance.rs and tests/tests/lang_go.rs.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"reflect"
	"strings"
	"testing"
	"unsafe"
)

func mustMarshal(t *testing.T, v any) []byte {
	t.Helper()
	b, err := Marshal(v)
	if err != nil {
		t.Fatalf("Marshal(%#v): %v", v, err)
	}
	return b
}

func TestMarshalShortestForms(t *testing.T) {
	cases := []struct {
		v    any
		want []byte
	}{
		{nil, []byte{0xc0}},
		{true, []byte{0xc3}},
		{false, []byte{0xc2}},
		{0, []byte{0x00}},
		{127, []byte{0x7f}},
		{128, []byte{0xcc, 0x80}},
		{uint64(1 << 16), []byte{0xce, 0, 1, 0, 0}},
		{-1, []byte{0xff}},
		{-32, []byte{0xe0}},
		{-33, []byte{0xd0, 0xdf}},
		{int64(math.MinInt64), []byte{0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0}},
		{uint64(math.MaxUint64), []byte{0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}},
		{1.5, []byte{0xcb, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0}},
		{float32(1.5), []byte{0xca, 0x3f, 0xc0, 0, 0}},
		{"hi", []byte{0xa2, 'h', 'i'}},
		{[]byte{1, 2}, []byte{0xc4, 2, 1, 2}},
		{[]int{1, 2}, []byte{0x92, 1, 2}},
		{map[string]int{"b": 2, "a": 1}, []byte{0x82, 0xa1, 'a', 1, 0xa1, 'b', 2}},
		{struct {
			X    int
			Y    string `msgpack:"why"`
			Skip int    `msgpack:"-"`
			priv int
		}{1, "y", 3, 4}, []byte{0x82, 0xa1, 'X', 1, 0xa3, 'w', 'h', 'y', 0xa1, 'y'}},
	}
	for _, c := range cases {
		if got := mustMarshal(t, c.v); !bytes.Equal(got, c.want) {
			t.Errorf("Marshal(%#v) = % x, want % x", c.v, got, c.want)
		}
	}
	long := strings.Repeat("x", 40)
	if got := mustMarshal(t, long); got[0] != 0xd9 || got[1] != 40 {
		t.Errorf("str8 header: % x", got[:2])
	}
	if _, err := Marshal(make(chan int)); err == nil {
		t.Error("a channel should not encode")
	}
}

func TestRoundTrips(t *testing.T) {
	type point struct {
		X, Y float64
		Tags []string
	}
	in := map[string]point{"p": {1, -2.5, []string{"a", "b"}}, "q": {}}
	var out map[string]point
	if err := Unmarshal(mustMarshal(t, in), &out); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(in["p"], out["p"]) || len(out) != 2 {
		t.Errorf("got %#v", out)
	}
	big := make([]uint32, 70000)
	for i := range big {
		big[i] = uint32(i * 7)
	}
	var back []uint32
	if err := Unmarshal(mustMarshal(t, big), &back); err != nil || !reflect.DeepEqual(big, back) {
		t.Errorf("array32 round trip: %v", err)
	}
	v, err := Decode(mustMarshal(t, map[int]any{1: "one", -2: []any{true, nil, 2.5}}))
	if err != nil {
		t.Fatal(err)
	}
	want := map[any]any{int64(1): "one", int64(-2): []any{true, nil, 2.5}}
	if !reflect.DeepEqual(v, want) {
		t.Errorf("Decode = %#v", v)
	}
}

func TestDecodeRejectsBadInput(t *testing.T) {
	for _, b := range [][]byte{
		{},
		{0xc1},
		{0xa5, 'a'},
		{0x92, 1},
		{0xdd, 0xff, 0xff, 0xff, 0xff},
		{0x01, 0x02},
		{0xd4, 0, 0},
	} {
		if v, err := Decode(b); err == nil {
			t.Errorf("Decode(% x) = %v, want an error", b, v)
		}
	}
	nested := bytes.Repeat([]byte{0x91}, 10000)
	if _, err := Decode(append(nested, 0)); err == nil {
		t.Error("deep nesting should be refused")
	}
	var u uint8
	if err := Unmarshal([]byte{0xcd, 1, 0}, &u); err == nil {
		t.Error("256 should not fit a uint8")
	}
	var s string
	if err := Unmarshal([]byte{0x01}, &s); err == nil || !strings.Contains(err.Error(), "expected a string, got uint (1)") {
		t.Errorf("err = %v", err)
	}
}

func args(t *testing.T, vs ...any) Args {
	t.Helper()
	a, err := NewArgs(vs...)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestArgsAccessors(t *testing.T) {
	a := args(t, uint64(7), int64(-2), 1.5, "text", Raw("raw"), nil, true, map[string]uint64{"a": 1})
	if a.Len() != 8 {
		t.Fatal(a.Len())
	}
	if v, err := a.Uint64(0); v != 7 || err != nil {
		t.Error(v, err)
	}
	if v, err := a.Float64(0); v != 7 || err != nil {
		t.Error(v, err)
	}
	if v, err := a.Int64(1); v != -2 || err != nil {
		t.Error(v, err)
	}
	if v, err := a.Float64(2); v != 1.5 || err != nil {
		t.Error(v, err)
	}
	if v, err := a.String(3); v != "text" || err != nil {
		t.Error(v, err)
	}
	if v, err := a.Text(4); v != "raw" || err != nil {
		t.Error(v, err)
	}
	if v, err := a.Bytes(4); string(v) != "raw" || err != nil {
		t.Error(v, err)
	}
	if !a.IsNil(5) || !a.IsNil(99) || a.IsNil(0) {
		t.Error("IsNil")
	}
	if v, err := a.Bool(6); !v || err != nil {
		t.Error(v, err)
	}
	var m map[string]uint64
	if err := a.Decode(7, &m); err != nil || m["a"] != 1 {
		t.Error(m, err)
	}
	if a.IsObject(0) {
		t.Error("IsObject")
	}
}

func TestArgErrorsNameTheArgument(t *testing.T) {
	a := args(t, int64(-2), "x", Raw("not msgpack \xc1"))
	check := func(err error, want string) {
		t.Helper()
		if err == nil || coded(err) != want {
			t.Errorf("err = %s\nwant  %s", coded(err), want)
		}
	}
	_, err := a.Uint64(0)
	check(err, "BAD_ARGUMENT: argument 0: expected an unsigned integer (uint64), got int (-2)")
	_, err = a.Float64(1)
	check(err, `BAD_ARGUMENT: argument 1: expected a number, got str ("x")`)
	_, err = a.Float64(9)
	check(err, "BAD_ARGUMENT: argument 9: missing (the call has 3 arguments)")
	_, err = a.Object(1)
	check(err, "BAD_ARGUMENT: argument 1: expected an object, got 2 inline bytes")
	if _, err = a.Value(2); err == nil || !strings.HasPrefix(coded(err), "BAD_ARGUMENT: argument 2: ") {
		t.Errorf("raw bytes are not MessagePack: %v", err)
	}
	nilArgs := args(t, nil)
	_, err = nilArgs.Float64(0)
	check(err, "BAD_ARGUMENT: argument 0: expected a number, got nil (<nil>)")
}

func TestEncodeResult(t *testing.T) {
	out, err := encodeResult(Raw("abc"))
	if err != nil || string(out.bytes) != "abc" || out.isObject {
		t.Error(out, err)
	}
	out, err = encodeResult(ObjectRef{ID: 9, Size: 100})
	if err != nil || !out.isObject || out.object != 9 {
		t.Error(out, err)
	}
	out, err = encodeResult(nil)
	if err != nil || !bytes.Equal(out.bytes, []byte{0xc0}) {
		t.Error(out, err)
	}
	if _, err = encodeResult(func() {}); err == nil {
		t.Error("a func should not encode")
	}
}

type testActor struct{ n int }

func (a *testActor) Incr(args Args) (int, error) {
	k, err := args.Int(0)
	a.n += k
	return a.n, err
}
func (a *testActor) Total(Args) int         { return a.n }
func (a *testActor) Reset(Args)             { a.n = 0 }
func (a *testActor) MergeCounts(Args) error { return Errorf(CodeBadArgument, "nope") }
func (a *testActor) NotAMethod(x int) int   { return x }

func TestActorsAndTasks(t *testing.T) {
	tasks, classes, actorIndex = nil, nil, -1
	Task("double", func(args Args) (any, error) {
		x, err := args.Float64(0)
		return 2 * x, err
	})
	Actor("T", func(args Args) (*testActor, error) { return &testActor{}, nil })
	names, methods := classNames()
	if !reflect.DeepEqual(names, []string{"T"}) ||
		!reflect.DeepEqual(methods[0], []string{"incr", "merge_counts", "reset", "total"}) {
		t.Fatalf("%v %v", names, methods)
	}
	out, err := runTask("double", args(t, 2.0))
	if err != nil || !bytes.Equal(out.bytes, mustMarshal(t, 4.0)) {
		t.Error(out, err)
	}
	if _, err := runTask("nope", Args{}); err == nil || !strings.HasPrefix(coded(err), "UNKNOWN_FUNCTION: unknown task `nope` (this module has: double)") {
		t.Error(err)
	}
	if _, err := callActor("incr", args(t, 1)); err == nil {
		t.Error("a call before init should fail")
	}
	if err := initActor("U", Args{}); err == nil || !strings.HasPrefix(coded(err), "UNKNOWN_FUNCTION:") {
		t.Error(err)
	}
	if err := initActor("T", Args{}); err != nil {
		t.Fatal(err)
	}
	callActor("incr", args(t, 5))
	out, err = callActor("total", Args{})
	if err != nil || !bytes.Equal(out.bytes, []byte{5}) {
		t.Error(out, err)
	}
	if _, err := callActor("merge_counts", Args{}); err == nil || coded(err) != "BAD_ARGUMENT: nope" {
		t.Error(err)
	}
	if _, err := callActor("not_a_method", Args{}); err == nil || !strings.HasPrefix(coded(err), "UNKNOWN_FUNCTION:") {
		t.Error(err)
	}
	out, err = callActor("reset", Args{})
	if err != nil || !bytes.Equal(out.bytes, []byte{0xc0}) {
		t.Error(out, err)
	}
}

func TestSnakeCase(t *testing.T) {
	for in, want := range map[string]string{
		"Add": "add", "TopN": "top_n", "MergeCounts": "merge_counts", "HTTPServer": "http_server",
		"Sum2D": "sum2_d", "X": "x",
	} {
		if got := SnakeCase(in); got != want {
			t.Errorf("SnakeCase(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestArenaAllocations(t *testing.T) {
	arenaReset()
	base := uintptr(unsafe.Pointer(&arenaStatic[0]))
	p := realloc(0, 0, 1, 3)
	q := realloc(0, 0, 8, 16)
	if p != base || q != base+8 {
		t.Errorf("bump: %x %x (base %x)", p, q, base)
	}
	// Growing copies the old bytes.
	copy(mem(q, 4), "abcd")
	r := realloc(q, 4, 8, 64)
	if string(mem(r, 4)) != "abcd" || r == q {
		t.Error("realloc did not copy")
	}
	if realloc(0, 0, 4, 0) != 4 {
		t.Error("empty allocations return the alignment")
	}
	// Larger than the arena: a Go-heap block, kept until the reset.
	before := arenaFallbacks
	big := realloc(0, 0, 8, arenaSize+1)
	if inStaticArena(big) || arenaFallbacks != before+1 || big%8 != 0 {
		t.Error("fallback")
	}
	// A prepared buffer is handed out once, for a transfer that fits it.
	buf := make([]byte, 100)
	prepareTransfer(buf)
	if realloc(0, 0, 1, 100) != uintptr(unsafe.Pointer(&buf[0])) {
		t.Error("prepared buffer not used")
	}
	if realloc(0, 0, 1, 100) == uintptr(unsafe.Pointer(&buf[0])) {
		t.Error("prepared buffer used twice")
	}
	arenaReset()
	if realloc(0, 0, 1, 1) != base || len(arenaOverflow) != 0 {
		t.Error("reset")
	}
}

func TestViewCapacity(t *testing.T) {
	for in, want := range map[uint64]int{1: 65536, 65536: 65536, 65537: 131072, 64 << 20: 64 << 20} {
		if got, ok := viewCapacity(in); !ok || got != want {
			t.Errorf("viewCapacity(%d) = %d", in, got)
		}
	}
	if _, ok := viewCapacity(1 << 40); ok {
		t.Error("a 1 TiB view should not fit")
	}
	xs, err := Float64s(mustMarshalFloats([]float64{1, 2.5}))
	if err != nil || !reflect.DeepEqual(xs, []float64{1, 2.5}) {
		t.Error(xs, err)
	}
	if _, err := Float64s(make([]byte, 7)); err == nil {
		t.Error("7 bytes are not float64s")
	}
}

func mustMarshalFloats(xs []float64) []byte {
	return append([]byte{}, unsafe.Slice((*byte)(unsafe.Pointer(&xs[0])), 8*len(xs))...)
}

func TestWithContextKeepsTheCode(t *testing.T) {
	err := withContext(&Error{Code: CodeUnknownObject, Message: "object 7 does not exist"}, "argument 0")
	if coded(err) != "UNKNOWN_OBJECT: argument 0: object 7 does not exist" {
		t.Error(coded(err))
	}
	err = withContext(errors.New("BAD_ARGUMENT: text"), "ctx")
	if coded(err) != "GUEST_ERROR: ctx: BAD_ARGUMENT: text" {
		t.Error(coded(err))
	}
}

// coded is "CODE: message" for err, to compare with expectations.
func coded(err error) string {
	if err == nil {
		return "<nil>"
	}
	return CodeOf(err).String() + ": " + err.Error()
}

func TestFailuresCrossAsRecords(t *testing.T) {
	var r retArea
	_ = r.lowerResultUnit(Errorf(CodeNameTaken, "taken"))
	if r.u8(0) != 1 || Code(r.u8(narrowPayload)) != CodeNameTaken || r.u32(narrowPayload+failureMessage+4) != 5 {
		t.Errorf("%v", r.bytes())
	}
	_ = r.lowerResultOutput(output{}, fmt.Errorf("wrapped: %w", errors.New("plain")))
	if r.u8(0) != 1 || Code(r.u8(widePayload)) != CodeGuestError || r.u32(widePayload+failureMessage+4) != 14 {
		t.Errorf("%v", r.bytes())
	}
	r = retArea{}
	r.bytes()[0] = 1
	r.bytes()[widePayload] = byte(CodeUnknownObject)
	_, err := r.liftResultU64()
	if coded(err) != "UNKNOWN_OBJECT: " {
		t.Error(coded(err))
	}
	r.bytes()[narrowPayload] = 250
	if _, err := r.liftResultBytes(nil); CodeOf(err) != CodeInternal {
		t.Error(coded(err))
	}
}

// TestLayoutsMatchTheGoldenFile checks the constants of abi.go and the code list against
// tests/golden/abi-layouts.json, which the host's tests compute from wit/.
func TestLayoutsMatchTheGoldenFile(t *testing.T) {
	data, err := os.ReadFile("../../tests/golden/abi-layouts.json")
	if err != nil {
		t.Fatal(err)
	}
	var g map[string]any
	if err := json.Unmarshal(data, &g); err != nil {
		t.Fatal(err)
	}
	n := func(k string) int {
		v, ok := g[k].(float64)
		if !ok {
			t.Fatalf("golden file has no number %s", k)
		}
		return int(v)
	}
	if g["package"] != "reef:runtime@0.2.0" {
		t.Errorf("package %v", g["package"])
	}
	want := map[string]int{
		"size.arg": argSize, "align.arg": 8, "payload.arg": variantPayload, "payload.output": variantPayload,
		"case.arg.inline": 0, "case.arg.object": 1, "case.output.bytes": 0, "case.output.object": 1,
		"offset.object-ref.id": 0, "offset.object-ref.size": 8,
		"offset.failure.code": 0, "offset.failure.message": failureMessage, "size.code": 1,
		"offset.module-info.sdk": 0, "offset.module-info.tasks": 8, "offset.module-info.actors": 16,
		"offset.actor-class.name": 0, "offset.actor-class.methods": 8,
		"payload.host.get.result": narrowPayload, "payload.guest.actor-init.result": narrowPayload,
		"payload.guest.run-task.result": widePayload, "payload.guest.actor-call.result": widePayload,
	}
	for _, f := range []string{"put", "object-size", "map-view", "submit", "actor-create", "actor-lookup", "actor-call"} {
		want["payload.host."+f+".result"] = widePayload
	}
	for k, v := range want {
		if n(k) != v {
			t.Errorf("%s: golden %d, SDK %d", k, n(k), v)
		}
	}
	codes := 0
	for k, v := range g {
		result := strings.HasSuffix(k, ".result")
		if result && strings.HasPrefix(k, "size.") && int(v.(float64)) > retAreaSize ||
			result && strings.HasPrefix(k, "align.") && int(v.(float64)) > retAreaAlignment {
			t.Errorf("%s = %v does not fit the return area", k, v)
		}
		if strings.HasPrefix(k, "case.code.") {
			codes++
		}
	}
	if codes != len(codeNames) {
		t.Errorf("golden file has %d codes, the SDK %d", codes, len(codeNames))
	}
	for i, name := range codeNames {
		if n("case.code."+name) != i {
			t.Errorf("code %s: golden %d, SDK %d", name, n("case.code."+name), i)
		}
	}
	if CodeNodeStopping.String() != "NODE_STOPPING" {
		t.Error(CodeNodeStopping)
	}
}

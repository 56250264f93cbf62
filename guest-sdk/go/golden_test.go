package reef

// The shared golden MessagePack vectors (tests/golden/msgpack.json at the repository
// root): every vector's value encodes to its bytes (shortest forms), its bytes decode
// to its value, and every invalid input is refused.

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"math"
	"math/big"
	"os"
	"sort"
	"strconv"
	"strings"
	"testing"
)

type goldenFile struct {
	Vectors []struct {
		Name   string          `json:"name"`
		Value  json.RawMessage `json:"value"`
		Hex    []string        `json:"hex"`
		Encode *bool           `json:"encode"`
	} `json:"vectors"`
	Invalid []struct {
		Name string   `json:"name"`
		Hex  []string `json:"hex"`
	} `json:"invalid"`
}

func loadGolden(t *testing.T) goldenFile {
	t.Helper()
	data, err := os.ReadFile("../../tests/golden/msgpack.json")
	if err != nil {
		t.Fatal(err)
	}
	var g goldenFile
	if err := json.Unmarshal(data, &g); err != nil {
		t.Fatal(err)
	}
	return g
}

func goldenBytes(t *testing.T, parts []string) []byte {
	t.Helper()
	var out []byte
	for _, part := range parts {
		byteHex, times, repeated := strings.Cut(part, "*")
		b, err := hex.DecodeString(byteHex)
		if err != nil {
			t.Fatal(err)
		}
		n := 1
		if repeated {
			if n, err = strconv.Atoi(times); err != nil {
				t.Fatal(err)
			}
		}
		out = append(out, bytes.Repeat(b, n)...)
	}
	return out
}

func goldenFloat(s string) float64 {
	switch s {
	case "Infinity":
		return math.Inf(1)
	case "-Infinity":
		return math.Inf(-1)
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		panic(err)
	}
	return f
}

// goldenValue gives what to Marshal for a description, what Decode must return for
// its bytes, and whether Go can express it as described (a map with several keys
// only as a map[string]any, which encodes its keys sorted).
func goldenValue(t *testing.T, raw json.RawMessage) (enc any, dec any, ok bool) {
	t.Helper()
	var desc map[string]json.RawMessage
	if err := json.Unmarshal(raw, &desc); err != nil {
		t.Fatal(err)
	}
	times := 1
	if r, has := desc["repeat"]; has {
		if err := json.Unmarshal(r, &times); err != nil {
			t.Fatal(err)
		}
	}
	str := func(r json.RawMessage) string {
		var s string
		if err := json.Unmarshal(r, &s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	for tag, v := range desc {
		switch tag {
		case "repeat":
			continue
		case "nil":
			return nil, nil, true
		case "bool":
			var b bool
			if err := json.Unmarshal(v, &b); err != nil {
				t.Fatal(err)
			}
			return b, b, true
		case "int":
			n, good := new(big.Int).SetString(str(v), 10)
			if !good {
				t.Fatalf("bad int %s", v)
			}
			if n.IsInt64() {
				return n.Int64(), n.Int64(), true
			}
			return n.Uint64(), n.Uint64(), true
		case "f64":
			f := goldenFloat(str(v))
			return f, f, true
		case "f32":
			f := goldenFloat(str(v))
			return float32(f), f, true
		case "str":
			s := strings.Repeat(str(v), times)
			return s, s, true
		case "bin":
			b, err := hex.DecodeString(str(v))
			if err != nil {
				t.Fatal(err)
			}
			b = bytes.Repeat(b, times)
			return b, b, true
		case "array":
			var items []json.RawMessage
			if err := json.Unmarshal(v, &items); err != nil {
				t.Fatal(err)
			}
			encs, decs, all := []any{}, []any{}, true
			for i := 0; i < times; i++ {
				for _, item := range items {
					e, d, ok := goldenValue(t, item)
					encs, decs, all = append(encs, e), append(decs, d), all && ok
				}
			}
			return encs, decs, all
		case "map":
			var pairs [][2]json.RawMessage
			if err := json.Unmarshal(v, &pairs); err != nil {
				t.Fatal(err)
			}
			strs, anys, all := map[string]any{}, map[any]any{}, true
			var keys []string
			for _, p := range pairs {
				ke, kd, kok := goldenValue(t, p[0])
				ve, vd, vok := goldenValue(t, p[1])
				all = all && kok && vok
				if s, isStr := kd.(string); isStr {
					strs[s] = vd
					keys = append(keys, s)
				}
				anys[ke] = ve
			}
			if len(keys) == len(pairs) {
				encs := map[string]any{}
				for _, p := range pairs {
					ke, _, _ := goldenValue(t, p[0])
					ve, _, _ := goldenValue(t, p[1])
					encs[ke.(string)] = ve
				}
				return encs, strs, all && sort.StringsAreSorted(keys)
			}
			decs := map[any]any{}
			for _, p := range pairs {
				_, kd, _ := goldenValue(t, p[0])
				_, vd, _ := goldenValue(t, p[1])
				decs[kd] = vd
			}
			return anys, decs, all && len(pairs) <= 1
		default:
			t.Fatalf("unknown value tag %s", tag)
		}
	}
	t.Fatalf("empty value description %s", raw)
	return nil, nil, false
}

// sameValue compares decoded values: types must match, bin compares by content.
func sameValue(a, b any) bool {
	switch x := a.(type) {
	case []byte:
		y, ok := b.([]byte)
		return ok && bytes.Equal(x, y)
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !sameValue(x[i], y[i]) {
				return false
			}
		}
		return true
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, v := range x {
			if w, has := y[k]; !has || !sameValue(v, w) {
				return false
			}
		}
		return true
	case map[any]any:
		y, ok := b.(map[any]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, v := range x {
			if w, has := y[k]; !has || !sameValue(v, w) {
				return false
			}
		}
		return true
	default:
		return a == b
	}
}

func TestGoldenVectorsEncodeToTheirBytes(t *testing.T) {
	checked := 0
	for _, v := range loadGolden(t).Vectors {
		enc, _, ok := goldenValue(t, v.Value)
		if (v.Encode != nil && !*v.Encode) || !ok {
			continue
		}
		got, err := Marshal(enc)
		if err != nil {
			t.Fatalf("%s: %v", v.Name, err)
		}
		if want := goldenBytes(t, v.Hex); !bytes.Equal(got, want) {
			t.Errorf("%s: encoded %.80x, golden %.80x", v.Name, got, want)
		}
		checked++
	}
	if checked < 50 {
		t.Fatalf("only %d vectors encoded", checked)
	}
}

func TestGoldenVectorsDecodeToTheirValues(t *testing.T) {
	for _, v := range loadGolden(t).Vectors {
		got, err := Decode(goldenBytes(t, v.Hex))
		if err != nil {
			t.Errorf("%s: %v", v.Name, err)
			continue
		}
		if _, want, _ := goldenValue(t, v.Value); !sameValue(got, want) {
			t.Errorf("%s: decoded %.200v, want %.200v", v.Name, got, want)
		}
	}
}

func TestGoldenInvalidInputsAreRefused(t *testing.T) {
	for _, v := range loadGolden(t).Invalid {
		if _, err := Decode(goldenBytes(t, v.Hex)); err == nil {
			t.Errorf("%s: decoded without an error", v.Name)
		}
	}
}

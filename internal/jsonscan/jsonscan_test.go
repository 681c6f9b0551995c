package jsonscan

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

// fields decodes obj's top level with EachField, values decoded by
// encoding/json, for comparison with a full decode.
func fields(obj []byte) map[string]any {
	out := map[string]any{}
	EachField(obj, func(k, v []byte) bool {
		var x any
		if json.Unmarshal(v, &x) != nil {
			out[string(k)] = "UNREADABLE"
			return true
		}
		out[string(k)] = x
		return true
	})
	return out
}

func TestEachField(t *testing.T) {
	tests := []struct {
		name string
		in   string
	}{
		{"flat", `{"type":3,"timestamp":1700000000000,"data":{"source":2}}`},
		{"spaces", " { \"a\" : [ 1 , {\"b\":\"}\"} ] , \"c\" : null } "},
		{"escaped quotes and keys", `{"t\"ag":"a \"quoted\" \\ value","x":"\\"}`},
		{"unicode", `{"k\u00e9y":"caf\u00e9 \ud83d\ude00","n":-12.5e3}`},
		{"nested arrays", `{"a":[[[]],[{}],"]"],"b":true,"c":false}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var want map[string]any
			if err := json.Unmarshal([]byte(tc.in), &want); err != nil {
				t.Fatal(err)
			}
			if got := fields([]byte(tc.in)); !reflect.DeepEqual(got, want) {
				t.Fatalf("got %v, want %v", got, want)
			}
		})
	}
}

func TestNumbersAndStrings(t *testing.T) {
	tests := []struct {
		name string
		in   string
		num  float64
		ok   bool
		i    int64
	}{
		{"int", "42", 42, true, 42},
		{"negative", "-7", -7, true, -7},
		{"fraction", "12.75", 12.75, true, 12},
		{"exponent", "1e3", 1000, true, 1000},
		{"timestamp", "1764403200000", 1764403200000, true, 1764403200000},
		{"null", "null", 0, false, 0},
		{"string", `"5"`, 0, false, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n, ok := Num([]byte(tc.in))
			i, iok := Int([]byte(tc.in))
			if n != tc.num || ok != tc.ok || i != tc.i || iok != tc.ok {
				t.Fatalf("Num %v %v, Int %v %v", n, ok, i, iok)
			}
		})
	}
	if got := Str([]byte(`"a\nb\u00e9\"\\"`)); got != "a\nbé\"\\" {
		t.Fatalf("Str: %q", got)
	}
	if Str([]byte(`5`)) != "" || !IsNull([]byte("null")) {
		t.Fatal("non-strings")
	}
}

func FuzzEachField(f *testing.F) {
	f.Add([]byte(`{"type":3,"data":{"source":2,"x":[1,"]",{"y":"\""}]}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var want map[string]any
		// Input is valid UTF-8 JSON (ParseBatch rejects anything else);
		// on other bytes the scanner only has to stay safe.
		if !utf8.Valid(b) || json.Unmarshal(b, &want) != nil {
			fields(b)
			return
		}
		got := fields(b)
		// Duplicate keys: encoding/json keeps the last, so does fields.
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%q: got %v, want %v", b, got, want)
		}
	})
}

func TestScan_OddInputs(t *testing.T) {
	obj := []byte(` { "a" : "x\"y\u00e9\ud83d\ude00" , "n": -12.5, "o": {"k": [1, {"z": "}"}]}, "t": true, "e": [] } `)
	got := map[string]string{}
	EachField(obj, func(k, v []byte) bool { got[string(k)] = string(v); return true })
	if len(got) != 5 || got["t"] != "true" || got["o"] != `{"k": [1, {"z": "}"}]}` {
		t.Fatalf("fields %q", got)
	}
	if s := Str([]byte(got["a"])); s != "x\"yé😀" {
		t.Errorf("str = %q", s)
	}
	if f, ok := Num([]byte(got["n"])); !ok || f != -12.5 {
		t.Errorf("num = %v %v", f, ok)
	}
	var elems []string
	EachElem([]byte(`[1, "a,b", {"c":[2]} ]`), func(v []byte) bool { elems = append(elems, string(v)); return true })
	if len(elems) != 3 || elems[1] != `"a,b"` {
		t.Errorf("elems %q", elems)
	}
	for _, bad := range []string{``, `{`, `{"a":`, `{"a" 1}`, `[1,`, `"open`} {
		EachField([]byte(bad), func(k, v []byte) bool { return true })
		EachElem([]byte(bad), func(v []byte) bool { return true })
	}
}

func TestEachField_KeysAndValues(t *testing.T) {
	var keys []string
	EachField([]byte(` { "a" : "x\"}" , "b\u0021":[1,{"c":"]"}] ,"d":-1.5e3,"e":true, "f" :null}`), func(key, val []byte) bool {
		keys = append(keys, string(key)+"="+string(val))
		return true
	})
	want := []string{`a="x\"}"`, `b!=[1,{"c":"]"}]`, `d=-1.5e3`, `e=true`, `f=null`}
	if strings.Join(keys, " ") != strings.Join(want, " ") {
		t.Errorf("eachField = %q, want %q", keys, want)
	}
}

// TestElems: each element is read from where it starts, and the index
// after the array comes back; a reader's failure or a broken array is -1.
func TestElems(t *testing.T) {
	tests := []struct {
		in   string
		want []string
		end  int
	}{
		{`[]`, nil, 2},
		{`[ ] tail`, nil, 3},
		{`[1,"a",{"b":[2]}, [3] ]x`, []string{`1`, `"a"`, `{"b":[2]}`, `[3]`}, 23},
		{`[1,2`, []string{`1`, `2`}, -1},
		{`[1 2]`, []string{`1`}, -1},
		{`{}`, nil, -1},
	}
	for _, tc := range tests {
		b := []byte(tc.in)
		var got []string
		end := Elems(b, SkipSpace(b, 0), func(j int) int {
			e := SkipValue(b, j)
			if e >= 0 {
				got = append(got, string(b[j:e]))
			}
			return e
		})
		if end != tc.end || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Elems(%s) = %d, %q; want %d, %q", tc.in, end, got, tc.end, tc.want)
		}
	}
	if end := Elems([]byte(`[1,2]`), 0, func(int) int { return -1 }); end != -1 {
		t.Errorf("a reader that fails: %d, want -1", end)
	}
}

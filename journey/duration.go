package journey

import (
	"encoding/json"
	"strconv"
	"strings"
	"time"
)

// Duration is a time span in JSON: a string like "30m", "36h" or "7d", or a
// number of seconds. It marshals as such a string.
type Duration time.Duration

// ParseDuration reads "7d", "12h30m", "90s" or a number of seconds.
func ParseDuration(s string) (Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, nil
	}
	if n, err := strconv.ParseFloat(s, 64); err == nil {
		if n < 0 || n > 10*365*86400 {
			return 0, invalidf("duration %q: out of range", s)
		}
		return Duration(n * float64(time.Second)), nil
	}
	var total time.Duration
	rest := s
	if i := strings.IndexByte(rest, 'd'); i > 0 {
		days, err := strconv.Atoi(rest[:i])
		if err != nil || days < 0 || days > 3650 {
			return 0, invalidf("duration %q: want e.g. 30m, 36h or 7d", s)
		}
		total = time.Duration(days) * 24 * time.Hour
		rest = rest[i+1:]
	}
	if rest != "" {
		d, err := time.ParseDuration(rest)
		if err != nil || d < 0 {
			return 0, invalidf("duration %q: want e.g. 30m, 36h or 7d", s)
		}
		total += d
	}
	return Duration(total), nil
}

// String formats d as days, hours, minutes and seconds ("7d", "1d12h").
func (d Duration) String() string {
	t := time.Duration(d)
	if t == 0 {
		return "0s"
	}
	days := t / (24 * time.Hour)
	t -= days * 24 * time.Hour
	out := ""
	if days > 0 {
		out = strconv.FormatInt(int64(days), 10) + "d"
	}
	if t > 0 {
		s := t.String()
		s = strings.TrimSuffix(s, "0s")
		s = strings.TrimSuffix(s, "0m")
		out += s
	}
	return out
}

// MarshalJSON writes the duration as a string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// UnmarshalJSON reads a string or a number of seconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		var n float64
		if err := json.Unmarshal(b, &n); err != nil {
			return invalidf("duration must be a string like \"7d\" or a number of seconds")
		}
		s = strconv.FormatFloat(n, 'f', -1, 64)
	}
	v, err := ParseDuration(s)
	if err != nil {
		return err
	}
	*d = v
	return nil
}

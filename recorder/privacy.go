package recorder

import (
	"net/netip"
	"net/url"
	"strings"
)

// Redacted replaces a value the Redactor removes.
const Redacted = "[redacted]"

// RedactRules say which URL parameters hold personal data.
type RedactRules struct {
	// Params are terms matched against the words of a parameter name (see
	// Redactor). A term may itself be several words, e.g. "api_key".
	Params []string
	// Words are terms matched only as whole words of a name, however long:
	// "code" matches "code" and "auth_code" but not "zipcode" or "encode".
	Words []string
	// Allow lists parameter names (whole, case-insensitive) never redacted
	// for their name or for holding a long random token; their values are
	// still checked for emails, card numbers and JWTs.
	Allow []string
}

// DefaultRedactRules returns the built-in terms for personal data and secrets.
func DefaultRedactRules() RedactRules {
	return RedactRules{
		Params: []string{
			"email", "mail", "card", "cc", "password", "passwd", "pwd", "token",
			"secret", "phone", "tel", "address", "ssn", "iban",
			"api_key", "apikey", "access_key", "private_key", "jwt", "otp", "passcode",
			"sessionid", "session_id", "sessid", "signature", "sig", "credential",
			"authorization",
		},
		// OAuth's ?code= and ?auth=, without "zipcode", "encode" or "author".
		Words: []string{"code", "auth"},
	}
}

// Redactor removes personal data and secrets from URLs before they are
// stored. It is immutable and safe for concurrent use.
//
// A query parameter (also in a query-like fragment such as "#/p?email=x"
// or "#access_token=x") has its value replaced by Redacted when:
//
//   - its name matches a term: the name is split into lowercase words at
//     every character that is not a letter or digit and at camelCase and
//     letter/digit boundaries ("userEmail", "user_email" and "USER-EMAIL"
//     are all [user email]); a term of four or more letters matches a word
//     that starts or ends with it ("useremail", "emailaddr", "csrftoken"),
//     a shorter term, and a term of RedactRules.Words, only a whole word, so
//     "cc" matches "cc_number" and "ccNum" but not "accent" or "success",
//     "tel" not "hotel", and "code" not "zipcode"; a term of several words
//     ("api_key") matches those whole words in a row ("x-api-key", "apiKey");
//   - or its decoded value holds a sensitive value (below); a long random
//     token does not count in the value of an allowed parameter.
//
// A sensitive value is one that contains:
//
//   - an email address;
//   - a card number: 13 to 19 digits, single spaces or dashes allowed
//     between groups, starting with 2-6 (the card networks' ranges) and
//     passing the Luhn check. The leading digit rule keeps millisecond
//     timestamps and most numeric ids, which start with 1, from being taken
//     for cards;
//   - a JWT: "eyJ" (a base64url JSON object) and 8 or more base64url
//     characters, a dot, and 8 or more after it;
//   - a long random token: a run of 24 or more base64url characters
//     (A-Z a-z 0-9 - _) holding an uppercase letter, a lowercase letter and
//     a digit. Signed-URL signatures, API keys, session and reset tokens
//     are such runs. Not taken for tokens: a run whose pieces between
//     dashes and underscores are all plain words (all lowercase, all
//     uppercase, Capitalised, or all digits), as in the slug
//     "Spring-Sale-2024-Final-Edition"; a run followed by a file extension,
//     as in a font's "KFOmCnqEu92Fr1Mu72xKKTU1Kvnz.woff2" (assets keep
//     their URLs); content hashes ("app.3f9a0c…e1.js", hex digests, UUIDs,
//     ULIDs), which have a single case. A camelCase name of 24 or more
//     characters with a digit ("getUserProfileSettingsV2") is taken for a
//     token: that costs a little analytics, never a secret.
//
// Path segments (and path-like fragments) that hold a sensitive value
// become Redacted, and user information before the host becomes
// "redacted". Everything else is kept byte for byte, in order. Anything
// that is not a URL is treated as a path; data: URLs are kept whole (their
// base64 would pass for tokens). Redacting twice changes nothing.
type Redactor struct {
	terms []term
	allow map[string]bool
}

// term is a parameter name term as lowercase words; whole terms match
// whole words only.
type term struct {
	words []string
	whole bool
}

// NewRedactor compiles rules.
func NewRedactor(rules RedactRules) *Redactor {
	r := &Redactor{allow: make(map[string]bool, len(rules.Allow))}
	for _, t := range rules.Params {
		if w := nameWords(t); len(w) > 0 {
			r.terms = append(r.terms, term{words: w})
		}
	}
	for _, t := range rules.Words {
		if w := nameWords(t); len(w) > 0 {
			r.terms = append(r.terms, term{words: w, whole: true})
		}
	}
	for _, a := range rules.Allow {
		r.allow[strings.ToLower(strings.TrimSpace(a))] = true
	}
	return r
}

// URL returns raw with personal data replaced; see Redactor. It never fails:
// unparseable input gets the value rules applied as if it were a path.
// A data: URL is content, not an address, and is returned as it is.
func (r *Redactor) URL(raw string) string {
	if len(raw) >= 5 && strings.EqualFold(raw[:5], "data:") {
		return raw
	}
	base, frag, hasFrag := strings.Cut(raw, "#")
	head, query, hasQuery := strings.Cut(base, "?")
	prefix, path := splitAuthority(head)

	newPrefix, c1 := redactUserinfo(prefix)
	newPath, c2 := redactPath(path)
	newQuery, c3 := query, false
	if hasQuery {
		newQuery, c3 = r.redactQuery(query)
	}
	newFrag, c4 := frag, false
	if hasFrag {
		newFrag, c4 = r.redactFragment(frag)
	}
	if !c1 && !c2 && !c3 && !c4 {
		return raw
	}
	var sb strings.Builder
	sb.Grow(len(raw) + 16)
	sb.WriteString(newPrefix)
	sb.WriteString(newPath)
	if hasQuery {
		sb.WriteByte('?')
		sb.WriteString(newQuery)
	}
	if hasFrag {
		sb.WriteByte('#')
		sb.WriteString(newFrag)
	}
	return sb.String()
}

// SensitiveParam reports whether a parameter name matches the rules' terms
// and is not allowed.
func (r *Redactor) SensitiveParam(name string) bool {
	// Cheap filter: a name matches only if it holds a term's first word.
	hit := false
	for _, t := range r.terms {
		if containsFold(name, t.words[0]) {
			hit = true
			break
		}
	}
	if !hit || r.allowed(name) {
		return false
	}
	words := nameWords(name)
	for _, t := range r.terms {
		if matchTerm(words, t) {
			return true
		}
	}
	return false
}

func (r *Redactor) allowed(name string) bool {
	return len(r.allow) > 0 && r.allow[strings.ToLower(name)]
}

// containsFold reports whether s contains the lowercase ASCII word sub,
// ignoring ASCII case.
func containsFold(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		j := 0
		for j < len(sub) {
			c := s[i+j]
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			if c != sub[j] {
				break
			}
			j++
		}
		if j == len(sub) {
			return true
		}
	}
	return false
}

// matchTerm reports whether the words of tm appear in words: a one-word
// term of 4+ bytes that is not whole as the start or end of a word,
// anything else as whole consecutive words.
func matchTerm(words []string, tm term) bool {
	term := tm.words
	if len(term) == 1 {
		t := term[0]
		partial := len(t) >= 4 && !tm.whole
		for _, w := range words {
			if w == t || partial && (strings.HasPrefix(w, t) || strings.HasSuffix(w, t)) {
				return true
			}
		}
		return false
	}
outer:
	for i := 0; i+len(term) <= len(words); i++ {
		for j, t := range term {
			if words[i+j] != t {
				continue outer
			}
		}
		return true
	}
	return false
}

// nameWords splits a parameter name into lowercase words.
func nameWords(name string) []string {
	var words []string
	b := []byte(name)
	start := -1
	flush := func(end int) {
		if start >= 0 && end > start {
			words = append(words, strings.ToLower(string(b[start:end])))
		}
		start = -1
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		cls := charClass(c)
		if cls == 0 {
			flush(i)
			continue
		}
		if start < 0 {
			start = i
			continue
		}
		prev := charClass(b[i-1])
		switch {
		case prev != cls && (prev == classDigit || cls == classDigit):
			flush(i) // letter/digit boundary
			start = i
		case prev == classLower && cls == classUpper:
			flush(i) // userEmail
			start = i
		case prev == classUpper && cls == classUpper && i+1 < len(b) && charClass(b[i+1]) == classLower:
			flush(i) // XMLHttp: the last capital starts a word
			start = i
		}
	}
	flush(len(b))
	return words
}

const (
	classOther = iota
	classLower
	classUpper
	classDigit
)

// charClass classifies ASCII; other bytes (non-ASCII letters) count as lower.
func charClass(c byte) int {
	switch {
	case 'a' <= c && c <= 'z', c >= 0x80:
		return classLower
	case 'A' <= c && c <= 'Z':
		return classUpper
	case '0' <= c && c <= '9':
		return classDigit
	}
	return classOther
}

// splitAuthority splits "scheme://authority" or "scheme:" off the front
// of s (before any query or fragment); the rest is the path.
func splitAuthority(s string) (prefix, path string) {
	n := 0
	if len(s) > 0 && isAlpha(s[0]) {
		i := 1
		for i < len(s) && (isAlpha(s[i]) || '0' <= s[i] && s[i] <= '9' || s[i] == '+' || s[i] == '-' || s[i] == '.') {
			i++
		}
		if i < len(s) && s[i] == ':' {
			n = i + 1
		}
	}
	if strings.HasPrefix(s[n:], "//") {
		end := strings.IndexByte(s[n+2:], '/')
		if end < 0 {
			return s, ""
		}
		n += 2 + end
	}
	return s[:n], s[n:]
}

func isAlpha(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }

// redactUserinfo replaces "user:password@" in a "scheme://authority" prefix.
func redactUserinfo(prefix string) (string, bool) {
	i := strings.Index(prefix, "//")
	if i < 0 {
		return prefix, false
	}
	at := strings.LastIndexByte(prefix, '@')
	if at < i+2 || prefix[i+2:at] == "redacted" {
		return prefix, false
	}
	return prefix[:i+2] + "redacted" + prefix[at:], true
}

// redactPath replaces segments holding a sensitive value.
func redactPath(path string) (string, bool) {
	if !mayHoldValue(path) {
		return path, false
	}
	segs := strings.Split(path, "/")
	changed := false
	for i, seg := range segs {
		if seg == Redacted || !mayHoldValue(seg) {
			continue
		}
		dec, err := url.PathUnescape(seg)
		if err != nil {
			dec = seg
		}
		if sensitiveValue(dec, true) {
			segs[i] = Redacted
			changed = true
		}
	}
	if !changed {
		return path, false
	}
	return strings.Join(segs, "/"), true
}

// redactQuery redacts the values of a raw query, keeping its bytes and order.
func (r *Redactor) redactQuery(q string) (string, bool) {
	if q == "" {
		return q, false
	}
	var sb strings.Builder // written from the first change on
	changed := false
	start := 0
	for start <= len(q) {
		end := strings.IndexByte(q[start:], '&')
		if end < 0 {
			end = len(q)
		} else {
			end += start
		}
		out, c := r.redactPair(q[start:end])
		if c && !changed {
			changed = true
			sb.Grow(len(q) + 16)
			sb.WriteString(q[:start])
		}
		if changed {
			sb.WriteString(out)
			if end < len(q) {
				sb.WriteByte('&')
			}
		}
		start = end + 1
	}
	if !changed {
		return q, false
	}
	return sb.String(), true
}

func (r *Redactor) redactPair(pair string) (string, bool) {
	name, value, hasEq := strings.Cut(pair, "=")
	if !hasEq {
		// A bare value, e.g. "?jane@example.com".
		if pair != Redacted && mayHoldValue(pair) && sensitiveValue(queryUnescape(pair), true) {
			return Redacted, true
		}
		return pair, false
	}
	if value == "" || value == Redacted {
		return pair, false
	}
	dname := queryUnescape(name)
	if r.SensitiveParam(dname) || mayHoldValue(value) && sensitiveValue(queryUnescape(value), !r.allowed(dname)) {
		return name + "=" + Redacted, true
	}
	return pair, false
}

// redactFragment treats "#path?query" and "#a=b&c=d" as queries, anything
// else as a path.
func (r *Redactor) redactFragment(f string) (string, bool) {
	if p, q, ok := strings.Cut(f, "?"); ok {
		np, c1 := redactPath(p)
		nq, c2 := r.redactQuery(q)
		if !c1 && !c2 {
			return f, false
		}
		return np + "?" + nq, true
	}
	if strings.IndexByte(f, '=') >= 0 {
		return r.redactQuery(f)
	}
	return redactPath(f)
}

func queryUnescape(s string) string {
	if strings.IndexByte(s, '%') < 0 && strings.IndexByte(s, '+') < 0 {
		return s
	}
	if v, err := url.QueryUnescape(s); err == nil {
		return v
	}
	return s
}

// mayHoldValue is a cheap filter for sensitiveValue over the raw,
// maybe percent-encoded s: an email needs an @ (maybe escaped), a card
// number at least 13 digits, a JWT "eyJ", a token a run of 24 token
// characters (a percent escape counts as three, so the decoded run is no
// longer).
func mayHoldValue[T ~string | ~[]byte](s T) bool {
	digits, run := 0, 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '@':
			return true
		case '0' <= c && c <= '9':
			if digits++; digits >= 13 {
				return true
			}
		}
		if tokenByte[c] || c == '%' {
			if run++; run >= minTokenLen {
				return true
			}
			if c == 'e' && i+2 < len(s) && s[i+1] == 'y' && s[i+2] == 'J' {
				return true
			}
			if c == '%' && i+2 < len(s) && s[i+1] == '4' && s[i+2] == '0' {
				return true
			}
		} else {
			run = 0
		}
	}
	return false
}

// sensitiveValue reports whether the decoded s holds an email, a card
// number, a JWT or, when tokens is set, a long random token.
func sensitiveValue(s string, tokens bool) bool {
	return containsEmail(s) || containsCardNumber(s) || containsJWT(s) || tokens && containsToken(s)
}

// minTokenLen is the shortest run taken for a random token.
const minTokenLen = 24

// tokenByte marks the base64url alphabet.
var tokenByte = func() (t [256]bool) {
	for c := 0; c < 256; c++ {
		t[c] = 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_'
	}
	return t
}()

// containsJWT reports whether s holds "eyJ" and 8+ base64url characters, a
// dot and 8+ more: a JWT's header and payload, whatever its signature.
func containsJWT(s string) bool {
	for i := strings.Index(s, "eyJ"); i >= 0; {
		j := i + 3
		for j < len(s) && tokenByte[s[j]] {
			j++
		}
		if j-i >= 11 && j < len(s) && s[j] == '.' {
			k := j + 1
			for k < len(s) && tokenByte[s[k]] {
				k++
			}
			if k-j-1 >= 8 {
				return true
			}
		}
		next := strings.Index(s[j:], "eyJ")
		if next < 0 {
			return false
		}
		i = j + next
	}
	return false
}

// containsToken reports whether s holds a long random token (see Redactor).
func containsToken(s string) bool {
	for i := 0; i < len(s); {
		if !tokenByte[s[i]] {
			i++
			continue
		}
		j := i
		for j < len(s) && tokenByte[s[j]] {
			j++
		}
		if j-i >= minTokenLen && !fileStem(s, j) && randomRun(s[i:j]) {
			return true
		}
		i = j
	}
	return false
}

// fileStem reports whether the run of s ending at j is followed by a file
// extension: ".woff2", ".js", ".chunk.js".
func fileStem(s string, j int) bool {
	if j+1 >= len(s) || s[j] != '.' {
		return false
	}
	k := j + 1
	for k < len(s) && k-j <= 6 && (isAlpha(s[k]) || '0' <= s[k] && s[k] <= '9') {
		k++
	}
	return k > j+1 && k-j <= 6 && (k == len(s) || s[k] == '.' || s[k] == '/' || s[k] == '?' || s[k] == '#')
}

// randomRun reports whether a run of base64url characters mixes upper and
// lower case and digits and is not just words joined by - and _.
func randomRun(run string) bool {
	var upper, lower, digit, wordy bool
	wordy = true
	start := 0
	for i := 0; i <= len(run); i++ {
		if i < len(run) && run[i] != '-' && run[i] != '_' {
			switch c := run[i]; {
			case 'A' <= c && c <= 'Z':
				upper = true
			case 'a' <= c && c <= 'z':
				lower = true
			default:
				digit = true
			}
			continue
		}
		if wordy && !plainWord(run[start:i]) {
			wordy = false
		}
		start = i + 1
	}
	return upper && lower && digit && !wordy
}

// plainWord reports whether w is all lowercase, all uppercase, Capitalised
// or all digits.
func plainWord(w string) bool {
	if w == "" {
		return true
	}
	cls := charClass(w[0])
	if cls == classUpper && len(w) > 1 && charClass(w[1]) == classLower {
		cls, w = classLower, w[1:]
	}
	for i := 0; i < len(w); i++ {
		if charClass(w[i]) != cls {
			return false
		}
	}
	return true
}

// containsEmail reports whether s holds local@domain.tld.
func containsEmail(s string) bool {
	for at := strings.IndexByte(s, '@'); at >= 0; {
		if emailAround(s, at) {
			return true
		}
		next := strings.IndexByte(s[at+1:], '@')
		if next < 0 {
			return false
		}
		at += 1 + next
	}
	return false
}

func emailAround(s string, at int) bool {
	i := at
	for i > 0 && isLocalChar(s[i-1]) {
		i--
	}
	if i == at {
		return false
	}
	// The domain: two or more labels of letters, digits and dashes, the
	// last (top-level) one of two or more letters. A dot after it ends it,
	// as in "write to jane@example.com."
	labels, lastLen, lastAlpha := 0, 0, false
	curLen, curAlpha := 0, true
	for j := at + 1; ; j++ {
		if j < len(s) {
			if c := s[j]; isAlpha(c) || c >= 0x80 || '0' <= c && c <= '9' || c == '-' {
				curLen++
				if c < 0x80 && !isAlpha(c) {
					curAlpha = false
				}
				continue
			}
		}
		if curLen > 0 {
			labels++
			lastLen, lastAlpha = curLen, curAlpha
		}
		if j < len(s) && s[j] == '.' && curLen > 0 {
			curLen, curAlpha = 0, true
			continue
		}
		return labels >= 2 && lastLen >= 2 && lastAlpha
	}
}

// isLocalChar reports bytes of the local part of an address as people
// write them; the rarer ones RFC 5322 allows are URL delimiters.
func isLocalChar(c byte) bool {
	return isAlpha(c) || '0' <= c && c <= '9' || c >= 0x80 || c == '.' || c == '_' || c == '%' || c == '+' || c == '-'
}

// containsCardNumber looks for runs of digit groups separated by one space
// or dash and tries every run of consecutive groups of 13-19 digits.
func containsCardNumber(s string) bool {
	var groups [][2]int // start, end of each digit group in the current run
	i := 0
	for i < len(s) {
		if s[i] < '0' || s[i] > '9' {
			i++
			continue
		}
		groups = groups[:0]
		for {
			start := i
			for i < len(s) && '0' <= s[i] && s[i] <= '9' {
				i++
			}
			groups = append(groups, [2]int{start, i})
			if i+1 < len(s) && (s[i] == ' ' || s[i] == '-') && '0' <= s[i+1] && s[i+1] <= '9' {
				i++
				continue
			}
			break
		}
		if cardInGroups(s, groups) {
			return true
		}
	}
	return false
}

func cardInGroups(s string, groups [][2]int) bool {
	for a := range groups {
		n := 0
		for b := a; b < len(groups); b++ {
			n += groups[b][1] - groups[b][0]
			if n > 19 {
				break
			}
			if n >= 13 && luhnCard(s, groups[a:b+1]) {
				return true
			}
		}
	}
	return false
}

// luhnCard checks the leading digit (2-6) and the Luhn sum of the digits
// of groups.
func luhnCard(s string, groups [][2]int) bool {
	if first := s[groups[0][0]]; first < '2' || first > '6' {
		return false
	}
	sum, double := 0, false
	for g := len(groups) - 1; g >= 0; g-- {
		for i := groups[g][1] - 1; i >= groups[g][0]; i-- {
			d := int(s[i] - '0')
			if double {
				if d *= 2; d > 9 {
					d -= 9
				}
			}
			sum += d
			double = !double
		}
	}
	return sum%10 == 0
}

// AnonymizeIP drops the host part of an address: IPv4 keeps its first
// three bytes (1.2.3.4 → 1.2.3.0), IPv6 its first 48 bits. A port or zone
// is dropped; anything that is not an address gives "".
func AnonymizeIP(ip string) string {
	ip = strings.TrimSpace(ip)
	addr, err := netip.ParseAddr(ip)
	if err != nil {
		ap, err2 := netip.ParseAddrPort(ip)
		if err2 != nil {
			return ""
		}
		addr = ap.Addr()
	}
	addr = addr.WithZone("").Unmap()
	bits := 48
	if addr.Is4() {
		bits = 24
	}
	p, err := addr.Prefix(bits)
	if err != nil {
		return ""
	}
	return p.Addr().String()
}

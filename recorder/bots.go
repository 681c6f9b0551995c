package recorder

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"strings"
	"sync"
)

// BotsFile is the crawler user-agent list inside dist: the patterns of the
// npm package crawler-user-agents (a maintained list of crawlers, bots and
// headless browsers), written there by `make js` (recorder/js/build.mjs).
const BotsFile = "crawler-user-agents.json"

// BotList tells crawlers' User-Agent headers from browsers'. It is safe for
// concurrent use.
type BotList struct {
	Source   string // the list's package and version
	n        int
	literals []string
	re       *regexp.Regexp // the patterns that are not plain text, as one

	mu    sync.Mutex
	cache map[string]bool
}

// LoadBots reads the embedded crawler list; without it (a binary built
// before `make js`) it returns ErrScriptNotBuilt.
func LoadBots() (*BotList, error) {
	return loadBots(dist)
}

func loadBots(fsys fs.FS) (*BotList, error) {
	b, err := fs.ReadFile(fsys, "dist/"+BotsFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrScriptNotBuilt
	}
	if err != nil {
		return nil, fmt.Errorf("read crawler list: %w", err)
	}
	var f struct {
		Source   string   `json:"source"`
		Patterns []string `json:"patterns"`
	}
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("read crawler list: %w", err)
	}
	return NewBotList(f.Source, f.Patterns)
}

// NewBotList compiles User-Agent patterns (Go regexp syntax, matched
// anywhere in the header, case-sensitive as the list is written).
func NewBotList(source string, patterns []string) (*BotList, error) {
	l := &BotList{Source: source, n: len(patterns), cache: map[string]bool{}}
	var rest []string
	for _, p := range patterns {
		re, err := regexp.Compile(p)
		if err != nil {
			return nil, fmt.Errorf("crawler pattern %q: %w", p, err)
		}
		// Most patterns are plain names: strings.Contains is far cheaper
		// than one more branch of the combined expression.
		if lit, complete := re.LiteralPrefix(); complete && lit != "" {
			l.literals = append(l.literals, lit)
		} else {
			rest = append(rest, "(?:"+p+")")
		}
	}
	if len(rest) > 0 {
		l.re = regexp.MustCompile(strings.Join(rest, "|"))
	}
	if l.n == 0 {
		return nil, errors.New("crawler list is empty")
	}
	return l, nil
}

// Len is the number of patterns.
func (l *BotList) Len() int { return l.n }

// IsBot reports whether ua matches a pattern of the list. Answers are
// cached: a site sees the same few hundred User-Agent strings again and
// again.
func (l *BotList) IsBot(ua string) bool {
	l.mu.Lock()
	v, ok := l.cache[ua]
	l.mu.Unlock()
	if ok {
		return v
	}
	v = l.match(ua)
	l.mu.Lock()
	if len(l.cache) >= 10000 {
		clear(l.cache)
	}
	l.cache[ua] = v
	l.mu.Unlock()
	return v
}

func (l *BotList) match(ua string) bool {
	for _, lit := range l.literals {
		if strings.Contains(ua, lit) {
			return true
		}
	}
	return l.re != nil && l.re.MatchString(ua)
}

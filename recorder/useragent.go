package recorder

import (
	useragent "github.com/medama-io/go-useragent"
	"github.com/medama-io/go-useragent/agents"
)

// UA is what the index keeps of a User-Agent header.
type UA struct {
	Browser        string // "Chrome", "Safari", "Firefox", "Edge"...; "" if unknown
	BrowserVersion string // as sent, e.g. "118.0.0.0"
	OS             string // "Windows", "MacOS", "iOS", "Android", "Linux"...
	Mobile, Tablet bool
	Bot            bool
}

// UAParser parses User-Agent headers. Build it once (it loads the parser's
// tables) and share it; it is safe for concurrent use.
type UAParser struct {
	p *useragent.Parser
}

// NewUAParser returns a parser.
func NewUAParser() *UAParser {
	return &UAParser{p: useragent.NewParser()}
}

// Parse reads a User-Agent header; an unknown or empty one gives a zero UA.
func (u *UAParser) Parse(ua string) UA {
	if ua == "" {
		return UA{}
	}
	a := u.p.Parse(ua)
	return UA{
		Browser:        string(a.Browser()),
		BrowserVersion: a.BrowserVersion(),
		OS:             string(a.OS()),
		Mobile:         a.Device() == agents.DeviceMobile,
		Tablet:         a.Device() == agents.DeviceTablet,
		Bot:            a.Device() == agents.DeviceBot,
	}
}

package recorder

import "testing"

func TestUAParser_Parse(t *testing.T) {
	tests := []struct {
		name string
		ua   string
		want UA
	}{
		{
			name: "chrome desktop",
			ua:   "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
			want: UA{Browser: "Chrome", BrowserVersion: "131.0.0.0", OS: "Windows"},
		},
		{
			name: "safari iphone",
			ua:   "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
			want: UA{Browser: "Safari", BrowserVersion: "17.5", OS: "iOS", Mobile: true},
		},
		{
			name: "firefox linux",
			ua:   "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
			want: UA{Browser: "Firefox", BrowserVersion: "133.0", OS: "Linux"},
		},
		{
			name: "edge",
			ua:   "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.2903.86",
			want: UA{Browser: "Edge", BrowserVersion: "131.0.2903.86", OS: "Windows"},
		},
		{
			name: "ipad",
			ua:   "Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.6 Mobile/15E148 Safari/604.1",
			want: UA{Browser: "Safari", BrowserVersion: "16.6", OS: "iOS", Tablet: true},
		},
		{
			name: "chrome android phone",
			ua:   "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.6778.135 Mobile Safari/537.36",
			want: UA{Browser: "Chrome", BrowserVersion: "131.0.6778.135", OS: "Android", Mobile: true},
		},
		{
			name: "googlebot",
			ua:   "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
			want: UA{Bot: true},
		},
		{name: "empty", ua: "", want: UA{}},
		{name: "command line client counts as bot", ua: "curl/8.5.0", want: UA{Bot: true}},
		{name: "garbage", ua: "x", want: UA{}},
	}
	p := NewUAParser()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := p.Parse(tt.ua); got != tt.want {
				t.Errorf("Parse(%q)\n got %+v\nwant %+v", tt.ua, got, tt.want)
			}
		})
	}
}

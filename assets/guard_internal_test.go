package assets

import (
	"net/netip"
	"testing"
)

func TestAddrAllowed(t *testing.T) {
	loop := []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
	tests := []struct {
		name  string
		addr  string
		allow []netip.Prefix
		want  bool
	}{
		{"public v4", "93.184.216.34", nil, true},
		{"public v6", "2606:2800:220:1:248:1893:25c8:1946", nil, true},
		{"loopback", "127.0.0.1", nil, false},
		{"loopback elsewhere in 127/8", "127.5.5.5", nil, false},
		{"loopback v6", "::1", nil, false},
		{"v4-mapped loopback", "::ffff:127.0.0.1", nil, false},
		{"private 10/8", "10.1.2.3", nil, false},
		{"private 172.16/12", "172.31.0.1", nil, false},
		{"private 192.168/16", "192.168.0.1", nil, false},
		{"unique local v6", "fd00::1", nil, false},
		{"link-local / metadata", "169.254.169.254", nil, false},
		{"link-local v6", "fe80::1", nil, false},
		{"unspecified", "0.0.0.0", nil, false},
		{"this network", "0.1.2.3", nil, false},
		{"carrier-grade NAT", "100.64.0.1", nil, false},
		{"multicast", "224.0.0.1", nil, false},
		{"broadcast", "255.255.255.255", nil, false},
		{"NAT64 of a private address", "64:ff9b::a00:1", nil, false},
		{"6to4", "2002:7f00:1::1", nil, false},
		{"allowed loopback", "127.0.0.1", loop, true},
		{"allowed mapped loopback", "::ffff:127.0.0.1", loop, true},
		{"other loopback still refused", "127.0.0.2", loop, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := addrAllowed(netip.MustParseAddr(tt.addr), tt.allow); got != tt.want {
				t.Errorf("addrAllowed(%s) = %v, want %v", tt.addr, got, tt.want)
			}
		})
	}
}

func TestOrigin(t *testing.T) {
	tests := []struct{ in, want string }{
		{"https://Shop.Example/a?b#c", "https://shop.example"},
		{"http://x.example:80/", "http://x.example"},
		{"https://x.example:443", "https://x.example"},
		{"http://x.example:8080/a", "http://x.example:8080"},
		{"http://[::1]:9/", "http://[::1]:9"},
		{"ftp://x.example/", ""},
		{"/relative", ""},
	}
	for _, tt := range tests {
		got, _ := Origin(tt.in)
		if got != tt.want {
			t.Errorf("Origin(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestContentHashed(t *testing.T) {
	for u, want := range map[string]bool{
		"https://cdn.example/app.3f9a1c2b.css":                      true,
		"https://cdn.example/logo-8d7e6f5a4b3c.png":                 true,
		"https://cdn.example/_next/static/css/0a1b2c3d4e5f6a7b.css": true,
		"https://cdn.example/x.css?v=3f9a1c2b9":                     true,
		"https://cdn.example/logo.png":                              false,
		"https://cdn.example/2024/12/photo.jpg":                     false,
	} {
		if got := contentHashed.MatchString(u); got != want {
			t.Errorf("%s: hashed %v, want %v", u, got, want)
		}
	}
}

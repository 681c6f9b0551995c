package server

// Extras are the domain services that later packages add (heatmap, journey,
// UI users and shares). Each field's type is an interface declared in the
// file that uses it; a nil field leaves its feature out.
type Extras struct {
	// Cookies authenticates the UI's login cookie (see auth.go).
	Cookies CookieAuth
}

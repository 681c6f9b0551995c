package server

// Extras are the domain services that later packages add (heatmap, journey,
// UI users and shares). Each field's type is an interface declared in the
// file that uses it; a nil field leaves its feature out.
type Extras struct {
	// Cookies authenticates the UI's login cookie (see auth.go).
	Cookies CookieAuth
	// UI holds the web UI's users and logins (see ui.go); nil: no web UI.
	UI UIUsers
	// FirstRun is the one-time setup of a fresh install's admin (see
	// setup.go); no token: no setup page.
	FirstRun FirstRun
	// Shares makes and plays share links (see shares.go).
	Shares Shares
	// Notes are the timeline notes of recordings (see notes.go).
	Notes Notes
	// Heatmaps draws click, element, scroll and frustration maps and lists
	// sessions' frustration signals (see heatmaps.go).
	Heatmaps Heatmaps
	// People, Funnels, Paths, Intent, Stages and Audiences are the journey
	// API's resources (see people.go, funnels.go, paths.go, intent.go,
	// stages.go, audiences.go; the journey service implements them all).
	People    People
	Funnels   Funnels
	Paths     Paths
	Intent    Intent
	Stages    Stages
	Audiences Audiences
	// Segments turns journey segments into the index's session conditions,
	// for ?segment= on the sessions list (see sessions.go); nil: the
	// sessions list takes no segment.
	Segments Segments
	// Forget deletes everything of a person (see forget.go); nil: no
	// DELETE /api/v1/people/{id}.
	Forget Forgetter
	// Audit keeps the audit log (see audit.go); nil: nothing is recorded
	// and there is no GET /api/v1/audit.
	Audit Auditor
	// Assets serves the stored copies of recorded pages' images, fonts and
	// style sheets and maps events to them (see assets.go); nil: no
	// /api/v1/assets and no ?assets=copies.
	Assets Assets
	// Uploads takes assets the browser script uploads (data-assets=
	// "upload"); nil: no upload routes.
	Uploads Uploads
	// Router sends ingest requests to the node of a cluster that owns
	// their session (see ingest.go); nil: one node.
	Router Router
	// Renders turns clips into MP4, WebM and GIF files (see renders.go);
	// nil: no /api/v1/renders.
	Renders Renders
}

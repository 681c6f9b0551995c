package server

import (
	"net/http"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/trailmap/trailmap/recorder"
)

// routes is the one place every route is registered. A domain's routes are
// registered only when its service is wired in (Deps.Extra).
func (s *Server) routes(e *echo.Echo) {
	e.Use(middleware.Recover(), utf8Only, s.readYourWrites)

	e.GET("/healthz", s.healthz)
	e.GET("/readyz", s.readyz)
	if s.deps.Registry != nil {
		e.GET("/metrics", echo.WrapHandler(promhttp.HandlerFor(s.deps.Registry, promhttp.HandlerOpts{})), s.metricsAccess)
	}

	// The browser recorder; echo matches "recorder.:version" after the
	// static /recorder.js.
	latest, pinned := s.scriptHandlers(recorder.LoadScript())
	e.Match(scriptMethods, "/recorder.js", latest)
	e.Match(scriptMethods, "/recorder.:version", pinned)

	// Ingest: public write keys, any origin, cached preflight.
	ingest := e.Group("/api/v1/ingest", middleware.CORSWithConfig(middleware.CORSConfig{
		AllowOrigins:  []string{"*"},
		AllowMethods:  []string{http.MethodPost, http.MethodOptions},
		AllowHeaders:  []string{"Content-Type", "Content-Encoding", "X-Trailmap-Key"},
		ExposeHeaders: []string{"Retry-After"},
		MaxAge:        86400,
	}))
	ingest.POST("", s.ingest)
	ingest.GET("/config", s.ingestConfig)
	ingest.OPTIONS("", func(c echo.Context) error { return c.NoContent(http.StatusNoContent) })
	if s.deps.Extra.Uploads != nil {
		// Browser-side asset capture (data-assets="upload"), with the
		// write key, from any origin.
		uploads := e.Group("/api/v1/assets", middleware.CORSWithConfig(middleware.CORSConfig{
			AllowOrigins: []string{"*"},
			AllowMethods: []string{http.MethodPost, http.MethodOptions},
			AllowHeaders: []string{"Content-Type", "X-Trailmap-Key"},
			MaxAge:       86400,
		}))
		uploads.POST("", s.uploadAsset)
		uploads.POST("/offer", s.offerAssets)
		uploads.OPTIONS("", func(c echo.Context) error { return c.NoContent(http.StatusNoContent) })
		uploads.OPTIONS("/offer", func(c echo.Context) error { return c.NoContent(http.StatusNoContent) })
	}

	// Dashboard API: bearer token or the UI's login cookie.
	api := e.Group("/api/v1", apiHeaders, s.requireAuth)
	api.GET("/projects", s.listProjects)
	api.GET("/projects/:id/settings/recording", s.recordingRules)
	api.PUT("/projects/:id/settings/recording", s.setRecordingRules)
	api.GET("/projects/:id/settings/assets", s.assetSettings)
	api.PUT("/projects/:id/settings/assets", s.setAssetSettings)
	api.GET("/sessions", s.listSessions)
	api.GET("/sessions/:id", s.getSession)
	api.GET("/sessions/:id/events", s.sessionEvents)

	x := s.deps.Extra
	if x.Audit != nil {
		api.GET("/audit", s.listAudit)
	}
	if x.Assets != nil {
		api.GET("/assets/:project/:sha256", s.getAsset)
	}
	// Videos and GIFs of clips, rendered on the server.
	if x.Renders != nil {
		rh := &renderHandlers{s: s, renders: x.Renders, shares: x.Shares}
		api.POST("/renders", rh.create)
		api.GET("/renders/:rid", rh.get)
		api.GET("/renders/:rid/file", rh.file)
		api.DELETE("/renders/:rid", rh.cancel)
	}
	if x.Heatmaps != nil {
		api.GET("/heatmaps/clicks", s.heatmapClicks)
		api.GET("/heatmaps/clicks.png", s.heatmapClicksPNG)
		api.GET("/heatmaps/scroll", s.heatmapScroll)
		api.GET("/heatmaps/scroll.png", s.heatmapScrollPNG)
		api.GET("/heatmaps/pages", s.heatmapPages)
		api.GET("/heatmaps/snapshot", s.heatmapSnapshot)
		api.GET("/sessions/:id/signals", s.sessionSignals)
	}

	// Journeys: documented in journey/README.md.
	if x.People != nil {
		api.GET("/people", s.listPeople)
		api.GET("/people/:id", s.getPerson)
	}
	// Erasure on request: every recording and row of a person.
	if x.Forget != nil {
		api.DELETE("/people/:id", s.forgetPerson)
	}
	if x.Funnels != nil {
		api.GET("/funnels", s.listFunnels)
		api.POST("/funnels", s.createFunnel)
		api.POST("/funnels/query", s.queryFunnel)
		api.POST("/funnels/query/sessions", s.queryFunnelSessions)
		api.GET("/funnels/:id", s.getFunnel)
		api.PUT("/funnels/:id", s.updateFunnel)
		api.DELETE("/funnels/:id", s.deleteFunnel)
		api.GET("/funnels/:id/results", s.funnelResults)
		api.GET("/funnels/:id/sessions", s.funnelSessions)
	}
	if x.Paths != nil {
		api.GET("/paths", s.paths)
	}
	if x.Intent != nil {
		api.GET("/journey/search-terms", s.searchTerms)
		api.GET("/journey/conversion-stats", s.conversionStats)
		api.GET("/journey/settings", s.journeySettings)
		api.PUT("/journey/settings", s.setJourneySettings)
	}
	if x.Segments != nil {
		api.GET("/journey/segment-fields", s.segmentFields)
	}
	if x.Stages != nil {
		api.GET("/stages", s.listStages)
		api.POST("/stages", s.createStage)
		api.GET("/stages/flow", s.stageFlow)
		api.GET("/stages/:id", s.getStage)
		api.PUT("/stages/:id", s.updateStage)
		api.DELETE("/stages/:id", s.deleteStage)
	}
	if x.Audiences != nil {
		api.GET("/audiences", s.listAudiences)
		api.POST("/audiences", s.createAudience)
		api.GET("/audiences/:id", s.getAudience)
		api.PUT("/audiences/:id", s.updateAudience)
		api.DELETE("/audiences/:id", s.deleteAudience)
		api.GET("/audiences/:id/members", s.audienceMembers)
		api.GET("/audiences/:id/members.csv", s.audienceMembersCSV)
	}

	// The web UI: pages behind the login, shares, notes.
	if x.UI == nil {
		return
	}
	h := s.newUIHandlers(x.UI)
	e.GET("/assets/*", echo.WrapHandler(http.StripPrefix("/assets/", h.web.Assets())))
	// A fresh install: the first visitor with the setup token makes the admin.
	st := h.newSetupHandlers(x.FirstRun)
	e.GET("/setup", st.page)
	e.POST("/setup", st.create)
	e.GET("/login", h.loginPage, st.toSetup)
	e.POST("/login", h.login)
	e.POST("/logout", h.logout)
	e.GET("/", func(c echo.Context) error { return c.Redirect(http.StatusSeeOther, "/sessions") }, st.toSetup)
	for _, p := range h.web.Pages() {
		e.GET(p.Path, h.page(p), h.requireLogin)
	}
	if x.Heatmaps != nil {
		rh := &reportHandlers{s: s, web: h.web, cache: map[string]cachedReport{}}
		api.GET("/heatmaps/report.png", rh.reportPNG)
	}
	if x.Shares != nil {
		sh := &shareHandlers{s: s, web: h.web, shares: x.Shares}
		api.POST("/shares", sh.create)
		api.GET("/shares", sh.list)
		api.GET("/shares/:sid", sh.get)
		api.DELETE("/shares/:sid", sh.revoke)
		api.GET("/sessions/:id/export", sh.export)
		// Public: anyone holding the token, nothing else.
		e.GET("/s/:token", sh.page(false))
		e.GET("/s/:token/embed", sh.page(true))
		e.GET("/s/:token/events", sh.events)
		e.GET("/s/:token/download", sh.download)
		if x.Assets != nil {
			e.GET("/s/:token/a/:sha256", sh.asset)
		}
		if x.Renders != nil {
			rh := &renderHandlers{s: s, renders: x.Renders, shares: x.Shares}
			e.POST("/s/:token/renders", rh.shareCreate(sh))
			e.GET("/s/:token/renders/:rid", rh.shareGet(sh))
			e.GET("/s/:token/renders/:rid/file", rh.shareFile(sh))
		}
	}
	if x.Notes != nil {
		n := &noteHandlers{s: s, notes: x.Notes}
		api.GET("/sessions/:id/notes", n.list)
		api.POST("/sessions/:id/notes", n.add)
		api.DELETE("/sessions/:id/notes/:note", n.remove)
	}
}

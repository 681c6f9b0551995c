package server

import "github.com/labstack/echo/v4"

// uiRoutes registers the web UI, login and share pages (issue: replay UI).
func (s *Server) uiRoutes(e *echo.Echo, api *echo.Group) {}

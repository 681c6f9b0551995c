package server

import "github.com/labstack/echo/v4"

// journeyRoutes registers the journey API (issue: customer journeys).
func (s *Server) journeyRoutes(api *echo.Group) {}

package server

import "github.com/labstack/echo/v4"

// heatmapRoutes registers the heatmap API (issue: heatmaps).
func (s *Server) heatmapRoutes(api *echo.Group) {}

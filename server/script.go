package server

import "github.com/labstack/echo/v4"

// scriptRoutes serves the browser recorder script (issue: browser recorder).
func (s *Server) scriptRoutes(e *echo.Echo) {}

//go:build tools

// Package tools records the vegeta command this module builds, so that `go mod tidy`
// keeps every module it needs in go.sum.
package tools

import (
	_ "github.com/tsenart/vegeta/v12"
)

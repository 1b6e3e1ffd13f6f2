//go:build tools

// Package tools records the registry and crane commands this module builds, so that
// `go mod tidy` keeps every module they need in go.sum.
package tools

import (
	_ "github.com/distribution/distribution/v3/cmd/registry"
	_ "github.com/google/go-containerregistry/cmd/crane"
)

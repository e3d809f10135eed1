// Package docs holds Waymark's published API description. It is embedded so
// that the tests check the server against the very bytes users read.
package docs

import _ "embed"

// OpenAPI is openapi.yaml: the OpenAPI description of the public (snippet)
// API.
//
//go:embed openapi.yaml
var OpenAPI []byte

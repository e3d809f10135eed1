// Package snippet holds the browser snippet and its demo page. They are
// embedded so that `waymark dev` and the deployed API serve exactly the
// files of the checkout they were built from, with nothing to install or
// copy.
package snippet

import "embed"

// Files holds waymark.js and demo/.
//
//go:embed waymark.js demo
var Files embed.FS

// Script is waymark.js, the script-tag file the API serves at /waymark.js.
//
//go:embed waymark.js
var Script []byte

// Package snippet holds the browser snippet and its demo page. They are
// embedded so that `waymark dev` serves exactly the files of the checkout it
// was built from, with nothing to install or copy.
package snippet

import "embed"

// Files holds waymark.js and demo/.
//
//go:embed waymark.js demo
var Files embed.FS

//go:build !cgo || purego

package block

// Native reports whether this build decodes with the C libraries.
const Native = false

var (
	zlibImpl    = goZlib
	deflateImpl = goDeflate
	xzImpl      = goXZ
)

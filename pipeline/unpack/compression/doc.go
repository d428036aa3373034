// Package compression holds the stream decompressors the unpacker peels off
// before it looks for the container inside: one file per codec.
package compression

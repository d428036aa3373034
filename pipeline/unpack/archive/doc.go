// Package archive reads the archive formats firmware arrives in: tar, cpio
// and zip, one file each. Each lists entries and opens them lazily from an
// io.ReaderAt; names, limits and hashing are the unpacker's job.
package archive

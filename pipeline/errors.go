package pipeline

import (
	"errors"
	"fmt"
)

// ErrNotRegular is returned when opening an entry that has no bytes.
var ErrNotRegular = errors.New("not a regular file")

// ErrUnknownFormat is returned when no unpacker recognises an input.
var ErrUnknownFormat = errors.New("unknown format")

// EntryError wraps an error about one entry.
type EntryError struct {
	Path      string
	Container []string
	Err       error
}

func (e *EntryError) Error() string { return fmt.Sprintf("%s: %v", Where(e.Container, e.Path), e.Err) }

func (e *EntryError) Unwrap() error { return e.Err }

// InputError is an error about an input the user named (a reference, a
// manifest, a policy): the CLI maps it to exit code 1 with the input's name.
type InputError struct {
	// Role says which input: "candidate", "baseline", "manifest", "policy".
	Role string
	Ref  string
	Err  error
}

func (e *InputError) Error() string { return fmt.Sprintf("%s %q: %v", e.Role, e.Ref, e.Err) }

func (e *InputError) Unwrap() error { return e.Err }

// LimitError reports that a named unpack limit was hit.
type LimitError struct {
	Limit string
	Value int64
	Msg   string
}

func (e *LimitError) Error() string {
	return fmt.Sprintf("limit %s (%d) exceeded: %s", e.Limit, e.Value, e.Msg)
}

//go:build !linux

package gate

import "os/exec"

// isolate and lowerPriority are Linux's: elsewhere the child runs at the
// service's priority, and outlives a service that is killed.
func isolate(*exec.Cmd)      {}
func lowerPriority(int, int) {}

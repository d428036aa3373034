package gate

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"syscall"
)

// isolate puts the child in a session (and so a process group) of its
// own, so that lowerPriority reaches every thread it has and a kill
// reaches what it started, and has the kernel kill it when the service dies (a SIGKILL,
// an out-of-memory kill): the job is retried at the service's next start,
// and a vet left running would record its verdict a second time.
func isolate(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
}

// lowerPriority adds nice to the niceness of every thread of the process
// group pgid, and to its autogroup's. Linux's niceness is a thread's: of
// a process, setpriority changes only the thread whose id is the
// process's, while of a group it changes every thread of its processes;
// threads made later inherit it. Where the kernel groups tasks by session
// (sched_autogroup, outside a cgroup of its own), a thread's niceness
// weighs only against its session's threads, while sessions share the
// CPUs evenly: the vet's session of its own gets the weight of its
// niceness too, or it would stand as even with the service (and with a
// PostgreSQL server on the same machine) as a session of the service's
// niceness. A child left at the service's priority is slower to answer,
// not wrong: errors are ignored.
func lowerPriority(pgid, nice int) {
	prio, err := syscall.Getpriority(syscall.PRIO_PGRP, pgid)
	if err != nil {
		return
	}
	// The system call answers 20 - niceness.
	n := min(19, 20-prio+nice)
	_ = syscall.Setpriority(syscall.PRIO_PGRP, pgid, n)
	_ = os.WriteFile(fmt.Sprintf("/proc/%d/autogroup", pgid), []byte(strconv.Itoa(n)), 0)
}

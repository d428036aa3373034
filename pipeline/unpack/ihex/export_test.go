package ihex

// SetMaxBuffered lowers the sort buffer bound for a test and returns the
// function that restores it.
func SetMaxBuffered(n int) (restore func()) {
	old := maxBuffered
	maxBuffered = n
	return func() { maxBuffered = old }
}

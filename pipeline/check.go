package pipeline

// CheckStatus is the outcome of one check.
type CheckStatus string

// Check statuses. Only CheckPass counts as passed: a check that could not
// complete is CheckError, never CheckPass.
const (
	CheckPass  CheckStatus = "pass"
	CheckFail  CheckStatus = "fail"
	CheckSkip  CheckStatus = "skip"
	CheckError CheckStatus = "error"
)

// Check is the result of a verification step (a signature, the manifest, an unpack).
type Check struct {
	Name   string      `json:"name"`
	Status CheckStatus `json:"status"`
	Detail string      `json:"detail"`
}

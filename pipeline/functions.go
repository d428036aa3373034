package pipeline

// FunctionDiff is the function-level difference of one modified ELF file
// between the baseline and the candidate, for a person reviewing it
// (fwvet diff --explain PATH).
type FunctionDiff struct {
	Path      string   `json:"path"`
	Container []string `json:"container"`
	// Architecture is the candidate's: "x86_64", "x86", "aarch64", "arm",
	// "mips" or "mipsel".
	Architecture string `json:"architecture"`
	// Stripped: the functions come from call targets and prologues, not
	// from a symbol table, and are named sub_ADDRESS.
	Stripped bool `json:"stripped"`
	// SameCode: both versions hold the same code bytes once build ids and
	// debug links are masked; nothing was disassembled.
	SameCode bool `json:"same_code"`
	// Added, Removed and Changed list functions by address; Unchanged
	// counts those matched with the same code.
	Added     []FunctionChange `json:"added"`
	Removed   []FunctionChange `json:"removed"`
	Changed   []FunctionChange `json:"changed"`
	Unchanged int              `json:"unchanged"`
}

// FunctionChange is one function of a FunctionDiff.
type FunctionChange struct {
	Name string `json:"name"`
	// Address is in the version the function belongs to (the candidate's,
	// the baseline's for a removed one); PreviousAddress is the baseline's
	// for a changed one.
	Address         string `json:"address"`
	Size            uint64 `json:"size"`
	PreviousAddress string `json:"previous_address,omitempty"`
	PreviousSize    uint64 `json:"previous_size,omitempty"`
	// MatchedBy says how a changed function was paired with its previous
	// version: "name", "hash", "calls" or "similar".
	MatchedBy string `json:"matched_by,omitempty"`
	// Calls are what an added or removed function calls; CallsAdded and
	// CallsRemoved what a changed one gained and lost (imports by name,
	// local functions by theirs).
	Calls        []string `json:"calls,omitempty"`
	CallsAdded   []string `json:"calls_added,omitempty"`
	CallsRemoved []string `json:"calls_removed,omitempty"`
	// Strings are the read-only strings an added or removed function
	// references; StringsAdded those a changed one newly references.
	// Compared and ComparedAdded are those of them passed to a compare
	// function (strcmp, strncmp, memcmp, strstr and their kin).
	Strings       []string `json:"strings,omitempty"`
	StringsAdded  []string `json:"strings_added,omitempty"`
	Compared      []string `json:"compared,omitempty"`
	ComparedAdded []string `json:"compared_added,omitempty"`
	// Constants are the immediate operands of at least 256 in magnitude
	// that an added or removed function uses, in hex, including 32-bit
	// ones built in two halves (lui/ori, movw/movt, mov/movk);
	// ConstantsAdded those a changed one newly uses. A port or a key
	// compared in code is one.
	Constants      []string `json:"constants,omitempty"`
	ConstantsAdded []string `json:"constants_added,omitempty"`
}

package pipeline

// ChangeKind is what happened to a path between baseline and candidate.
type ChangeKind string

// Change kinds.
const (
	ChangeAdded    ChangeKind = "added"
	ChangeRemoved  ChangeKind = "removed"
	ChangeModified ChangeKind = "modified"
	ChangeMetadata ChangeKind = "metadata"
)

// Change is one difference between the baseline and the candidate tree.
type Change struct {
	Kind      ChangeKind `json:"kind"`
	Path      string     `json:"path"`
	Container []string   `json:"container"`
	Key       string     `json:"-"`
	// Old is the baseline entry (nil when added), New the candidate's (nil when removed).
	Old *Entry `json:"-"`
	New *Entry `json:"-"`
	// Fields lists what changed for ChangeMetadata and ChangeModified:
	// "type", "content", "mode", "uid", "gid", "link_target", "device",
	// "label".
	Fields []string `json:"fields,omitempty"`
	// MovedFrom / MovedTo name the other path of a move detected by content hash.
	MovedFrom string `json:"moved_from,omitempty"`
	MovedTo   string `json:"moved_to,omitempty"`
	// Nested reports that the entry is a container the unpacker opened (on
	// each side that has it): what changed inside it is reported by the
	// changes of the entries it holds.
	Nested    bool `json:"nested,omitempty"`
	Disclosed bool `json:"disclosed"`
}

// HeaderOnly reports whether the change is only to what a container's
// header holds: the bytes of a container opened on both sides (a new
// timestamp, name or checksum around its entries) or a label from a header.
// Such a change means nothing of its own: it is explained when every change
// inside the container is disclosed.
func (c *Change) HeaderOnly() bool {
	if c.Kind != ChangeModified && c.Kind != ChangeMetadata {
		return false
	}
	for _, f := range c.Fields {
		switch {
		case f == "label":
		case f == "content" && c.Nested:
		default:
			return false
		}
	}
	return len(c.Fields) > 0
}

// Entry returns the candidate entry, or the baseline's for a removal.
func (c *Change) Entry() *Entry {
	if c.New != nil {
		return c.New
	}
	return c.Old
}

// HasField reports whether the change touched the named field.
func (c *Change) HasField(name string) bool {
	for _, f := range c.Fields {
		if f == name {
			return true
		}
	}
	return false
}

// Summary counts changes.
type Summary struct {
	Added       int `json:"added"`
	Removed     int `json:"removed"`
	Modified    int `json:"modified"`
	Metadata    int `json:"metadata"`
	Undisclosed int `json:"undisclosed"`
}

// Summarize counts the changes by kind and those not disclosed.
func Summarize(changes []*Change) Summary {
	var s Summary
	for _, c := range changes {
		switch c.Kind {
		case ChangeAdded:
			s.Added++
		case ChangeRemoved:
			s.Removed++
		case ChangeModified:
			s.Modified++
		case ChangeMetadata:
			s.Metadata++
		}
		if !c.Disclosed {
			s.Undisclosed++
		}
	}
	return s
}

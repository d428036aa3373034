package ubifs

import (
	"context"
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/fwvet/fwvet/pipeline"
)

type walker struct {
	v     *volume
	lim   pipeline.Limits
	visit func(*pipeline.Header, pipeline.OpenFunc) error
	// seen holds the directories listed, so that a directory entry pointing
	// to an ancestor cannot send the walk round in circles.
	seen    map[uint32]bool
	entries int64
	// openAt opens a file by its inode number: one function for the walk,
	// so that no file holds a closure of its own.
	openAt pipeline.OpenAt
}

func (v *volume) walk(ctx context.Context, lim pipeline.Limits, visit func(*pipeline.Header, pipeline.OpenFunc) error) error {
	root, err := v.inode(rootIno)
	if err != nil {
		return fmt.Errorf("reading root inode: %w", err)
	}
	if root.typ != pipeline.TypeDir {
		return corrupt("root inode is a %s, not a directory", root.typ)
	}
	w := &walker{v: v, lim: lim, visit: visit, seen: map[uint32]bool{rootIno: true}, openAt: v.openAt}
	h, err := w.entry(".", root)
	if err != nil {
		return err
	}
	if err := visit(h, nil); err != nil {
		return err
	}
	err = w.dir(ctx, "", rootIno)
	// The files open through the volume for as long as the tree listing
	// them lives; the directory entries are of no more use.
	v.idx.dents = leaves{}
	return err
}

func (w *walker) dir(ctx context.Context, dirPath string, inum uint32) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(dirPath) > w.lim.MaxPathLen {
		// The unpacker refuses this path and all beneath it; not descending
		// also bounds the recursion.
		return nil
	}
	refs, ok := w.v.idx.dirents(inum, w.lim.MaxEntries-w.entries)
	if !ok {
		return &pipeline.LimitError{Limit: "max-entries", Value: w.lim.MaxEntries, Msg: "the UBIFS image lists more entries"}
	}
	ents, err := w.v.dirents(inum, refs)
	if err != nil {
		return fmt.Errorf("listing /%s: %w", dirPath, err)
	}
	slices.SortFunc(ents, func(a, b dirent) int { return strings.Compare(a.name, b.name) })
	for _, de := range ents {
		w.entries++
		p := path.Join(dirPath, de.name)
		in, err := w.v.inode(de.inum)
		if err != nil {
			return fmt.Errorf("/%s: %w", p, err)
		}
		h, err := w.entry(p, in)
		if err != nil {
			return fmt.Errorf("/%s: %w", p, err)
		}
		if err := w.visit(h, nil); err != nil {
			return err
		}
		if in.typ == pipeline.TypeDir {
			if w.seen[de.inum] {
				return corrupt("directory /%s lists an ancestor or an already listed directory", p)
			}
			w.seen[de.inum] = true
			if err := w.dir(ctx, p, de.inum); err != nil {
				return err
			}
		}
	}
	return nil
}

// entry builds the header of inode in at name; a regular file opens
// through the walk's OpenAt.
func (w *walker) entry(name string, in *inode) (*pipeline.Header, error) {
	h := &pipeline.Header{Name: name, Type: in.typ, Mode: in.mode & pipeline.ModePerm, UID: in.uid, GID: in.gid}
	if in.flags&flagCrypt != 0 {
		h.Damage = "the inode is encrypted (fscrypt); its contents and names cannot be read without the key"
	}
	switch in.typ {
	case pipeline.TypeSymlink:
		h.LinkName = string(in.data)
	case pipeline.TypeChar, pipeline.TypeBlock:
		var err error
		if h.Major, h.Minor, err = in.device(); err != nil {
			return nil, err
		}
	case pipeline.TypeFile:
		h.Size = int64(in.size)
		// Only an inode of further names needs one: the unpacker keeps a
		// slot for each Identity while it walks, a million at the entry
		// limit. An inode that a hostile image names more often than its
		// link count says is read once a name, within the byte limits.
		if in.nlink > 1 {
			h.Identity = uint64(in.inum)
		}
		if in.flags&flagCrypt == 0 && h.Size <= w.lim.MaxFileSize {
			h.OpenAt, h.Locator = w.openAt, uint64(in.inum)
		}
	}
	return h, nil
}

package ubi

import (
	"fmt"
)

// vtblEntry is the volume table's word on one volume, with what was wrong
// with its records.
type vtblEntry struct {
	rec    vtblRec
	ok     bool // rec comes from a record whose CRC and fields check
	damage []string
}

// readVtbl reads both copies of the volume table, the two LEBs of the layout
// volume, and takes each record from the first copy where it is sound. The
// kernel repairs one bad copy from the other silently; here the repair is
// reported, since a copy that differs is worth a look.
// It reports false when the image has no layout volume at all.
func (img *image) readVtbl() ([maxVolumes]vtblEntry, bool, error) {
	var out [maxVolumes]vtblEntry
	lay := img.vols[layoutVolID]
	if lay == nil {
		return out, false, nil
	}
	lebSize := img.g.lebSize()
	slots := min(maxVolumes, int(lebSize/vtblRecSize))
	var copies [layoutLEBs][]byte
	for n := range copies {
		l, ok := lay.chosen[uint32(n)]
		if !ok {
			continue
		}
		b := make([]byte, slots*vtblRecSize)
		if err := readAt(img.r, b, l.peb*img.g.pebSize+img.g.dataOff); err != nil {
			return out, false, fmt.Errorf("ubi: volume table copy %d in PEB %d: %w", n, l.peb, err)
		}
		copies[n] = b
	}
	for i := 0; i < slots; i++ {
		e := &out[i]
		var errs []string
		for n, b := range copies {
			if b == nil {
				errs = append(errs, fmt.Sprintf("copy %d is missing", n))
				continue
			}
			rec, err := parseVtblRec(b[i*vtblRecSize:(i+1)*vtblRecSize], lebSize)
			if err != nil {
				errs = append(errs, fmt.Sprintf("copy %d: %v", n, err))
				continue
			}
			if !e.ok {
				e.rec, e.ok = rec, true
			} else if rec.reservedPEBs != e.rec.reservedPEBs || string(rec.name) != string(e.rec.name) || rec.volType != e.rec.volType {
				errs = append(errs, fmt.Sprintf("copy %d differs from copy 0", n))
			}
		}
		if len(errs) > 0 && (e.ok && e.rec.reservedPEBs > 0 || !e.ok) {
			for _, s := range errs {
				e.damage = append(e.damage, fmt.Sprintf("volume table record %d: %s", i, s))
			}
		}
	}
	return out, true, nil
}

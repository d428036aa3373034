package ubi

import (
	"context"
	"fmt"
	"sort"
	"strings"
)

// volume is one user volume as the reader presents it.
type volume struct {
	id uint32
	// label is the name in the volume table, "" without a record.
	label   string
	static  bool
	lebSize int64            // usable bytes per LEB: the PEB's data area less the data pad
	lebs    map[uint32]int64 // lnum -> PEB
	size    int64
	damage  []string
}

// volumes joins the volume table with the LEBs found, in volume id order: a
// volume in the table with no LEBs is an empty one; LEBs of a volume missing
// from the table are shown all the same, since hidden data is what a
// reviewer wants to see.
func (img *image) volumes(ctx context.Context, maxFileSize int64) ([]*volume, error) {
	vt, haveVtbl, err := img.readVtbl()
	if err != nil {
		return nil, err
	}
	var reserved int64
	for i := range vt {
		reserved += int64(vt[i].rec.reservedPEBs)
	}
	short := haveVtbl && reserved+layoutLEBs > img.g.pebs
	var out []*volume
	for id := uint32(0); id < maxVolumes; id++ {
		e, sv := &vt[id], img.vols[id]
		if sv == nil && (!e.ok || e.rec.reservedPEBs == 0) {
			continue
		}
		if sv == nil {
			sv = &scanVol{id: id}
		}
		v := &volume{id: id, lebs: map[uint32]int64{}, damage: append([]string(nil), e.damage...)}
		v.damage = append(v.damage, sv.damage...)
		dataPad := int64(0)
		switch {
		case e.ok && e.rec.reservedPEBs > 0:
			v.label = string(e.rec.name)
			v.static = e.rec.volType == volStatic
			dataPad = int64(e.rec.dataPad)
			if e.rec.updMarker {
				v.damage = append(v.damage, "the update marker is set: an update of this volume was interrupted")
			}
		case !haveVtbl:
			v.damage = append(v.damage, "the image has no volume table (layout volume)")
		case e.ok || len(e.damage) == 0:
			v.damage = append(v.damage, fmt.Sprintf("volume %d has LEBs but no volume table record", id))
		}
		if !e.ok || e.rec.reservedPEBs == 0 {
			// Without a record, the VID headers tell the type and data pad.
			if l, ok := anyLEB(sv); ok {
				v.static = l.vid.volType == volStatic
				dataPad = int64(l.vid.dataPad)
			}
		}
		v.lebSize = img.g.lebSize() - dataPad
		limit := uint32(min(img.g.pebs, maxPEBs))
		if e.ok && e.rec.reservedPEBs > 0 {
			limit = e.rec.reservedPEBs
		}
		img.placeLEBs(v, sv, limit)
		if v.static {
			if err := img.sizeStatic(ctx, v, sv, limit, maxFileSize); err != nil {
				return nil, err
			}
		} else {
			img.sizeDynamic(v)
		}
		if short && v.static && len(v.lebs) == 0 {
			v.damage = append(v.damage, fmt.Sprintf("static volume with no LEBs in the image: the volume table reserves %d PEBs, the image holds %d, so it may be truncated",
				reserved+layoutLEBs, img.g.pebs))
		}
		if c := img.cut; c != nil && c.vid.volID == id {
			v.damage = append(v.damage, fmt.Sprintf("LEB %d in PEB %d is cut off by the end of the image", c.vid.lnum, c.peb))
		}
		v.damage = summarise(v.damage)
		out = append(out, v)
	}
	return out, nil
}

// maxDamage bounds the messages kept per volume: a worn-out flash may have
// thousands of bad headers, and one line each says nothing more.
const maxDamage = 12

func summarise(d []string) []string {
	sort.Strings(d)
	if len(d) > maxDamage {
		d = append(d[:maxDamage], fmt.Sprintf("and %d more", len(d)-maxDamage))
	}
	return d
}

func sortedLnums[T any](m map[uint32]T) []uint32 {
	out := make([]uint32, 0, len(m))
	for lnum := range m {
		out = append(out, lnum)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// placeLEBs keeps the chosen LEBs the volume table allows and tells which
// damaged PEBs claimed LEBs of the volume that are now missing.
func (img *image) placeLEBs(v *volume, sv *scanVol, limit uint32) {
	for _, lnum := range sortedLnums(sv.chosen) {
		l := sv.chosen[lnum]
		if lnum >= limit {
			v.damage = append(v.damage, fmt.Sprintf("LEB %d in PEB %d is beyond the volume's %d LEBs and is ignored", lnum, l.peb, limit))
			continue
		}
		if int64(l.vid.dataPad) != img.g.lebSize()-v.lebSize {
			v.damage = append(v.damage, fmt.Sprintf("LEB %d in PEB %d has data pad %d, the volume %d", lnum, l.peb, l.vid.dataPad, img.g.lebSize()-v.lebSize))
		}
		if (l.vid.volType == volStatic) != v.static {
			v.damage = append(v.damage, fmt.Sprintf("LEB %d in PEB %d has a VID header of another volume type", lnum, l.peb))
		}
		v.lebs[lnum] = l.peb
	}
	for _, b := range img.badVIDs {
		if b.volID != v.id {
			continue
		}
		if _, ok := v.lebs[b.lnum]; ok {
			continue
		}
		what := "reads as 0xFF"
		if v.static {
			what = "is missing"
		}
		v.damage = append(v.damage, fmt.Sprintf("PEB %d, which claims LEB %d, has a damaged VID header (%v): the LEB %s", b.peb, b.lnum, b.err, what))
	}
}

// sizeDynamic: a dynamic volume's contents end at its last mapped LEB; the
// LEBs past it are unmapped and read as erased flash, which the file leaves
// out, while holes before it read as 0xFF, as UBI returns them.
func (img *image) sizeDynamic(v *volume) {
	var n int64
	for lnum := range v.lebs {
		n = max(n, int64(lnum)+1)
	}
	v.size = n * v.lebSize
}

// sizeStatic: a static volume holds used_ebs LEBs, the last one data_size
// bytes long, each with a CRC of its data, which is checked here so that a
// mismatch is told with the entry.
func (img *image) sizeStatic(ctx context.Context, v *volume, sv *scanVol, limit uint32, maxFileSize int64) error {
	if len(v.lebs) == 0 {
		return nil
	}
	lnums := sortedLnums(v.lebs)
	used := sv.chosen[lnums[0]].vid.usedEBs
	for _, lnum := range lnums {
		if u := sv.chosen[lnum].vid.usedEBs; u != used {
			v.damage = append(v.damage, fmt.Sprintf("LEB %d says the volume uses %d LEBs, LEB %d says %d", lnum, u, lnums[0], used))
			used = max(used, u)
		}
	}
	last := v.lebSize
	if _, ok := v.lebs[used-1]; ok {
		last = int64(sv.chosen[used-1].vid.dataSize)
	}
	if e := used; e > limit {
		v.damage = append(v.damage, fmt.Sprintf("static volume says it uses %d LEBs, more than the %d it may have", e, limit))
	}
	v.size = int64(used-1)*v.lebSize + last
	var missing []string
	for lnum := uint32(0); lnum < used && len(missing) <= 8; lnum++ {
		if _, ok := v.lebs[lnum]; !ok {
			missing = append(missing, fmt.Sprint(lnum))
		}
	}
	if len(missing) > 0 {
		if len(missing) > 8 {
			missing[8] = "..."
		}
		v.damage = append(v.damage, fmt.Sprintf("static volume of %d LEBs lacks LEBs %s", used, strings.Join(missing, ", ")))
	}
	if v.size > maxFileSize {
		return nil
	}
	buf := make([]byte, v.lebSize)
	for _, lnum := range lnums {
		if err := ctx.Err(); err != nil {
			return err
		}
		l := sv.chosen[lnum]
		ok, err := img.dataCRCOK(l, buf)
		if err != nil {
			return err
		}
		if !ok {
			v.damage = append(v.damage, fmt.Sprintf("LEB %d in PEB %d fails its data CRC", lnum, l.peb))
		}
	}
	return nil
}

func anyLEB(sv *scanVol) (leb, bool) {
	best, found := leb{}, false
	for lnum, l := range sv.chosen {
		if !found || lnum < best.vid.lnum {
			best, found = l, true
		}
	}
	return best, found
}

package ubi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
)

// image is a scanned UBI image: for every volume, the PEB that holds each
// of its LEBs.
type image struct {
	r    io.ReaderAt
	size int64
	g    *geometry
	vols map[uint32]*scanVol
	// badVIDs are PEBs whose VID header is damaged, by the volume and LEB
	// the header claims (unverified, used only to say what went missing).
	badVIDs []badVID
	// cutPEB is the PEB cut short by the end of the image, if it holds an LEB.
	cut *leb
}

type badVID struct {
	peb   int64
	volID uint32
	lnum  uint32
	err   error
}

// leb is one PEB's claim to hold an LEB.
type leb struct {
	peb int64
	vid vidHdr
}

// scanVol collects what the VID headers say about one volume.
type scanVol struct {
	id     uint32
	cands  map[uint32][]leb // lnum -> PEBs that claim it
	chosen map[uint32]leb   // lnum -> the PEB that holds it
	damage []string
}

// scan reads the EC and VID header of every PEB and picks, for each LEB,
// the PEB that holds its current contents.
func scan(ctx context.Context, r io.ReaderAt, size int64, g *geometry) (*image, error) {
	img := &image{r: r, size: size, g: g, vols: map[uint32]*scanVol{}}
	var b [hdrSize]byte
	lebSize := g.lebSize()
	for i := int64(0); i*g.pebSize+g.vidOff+hdrSize <= size && i <= g.pebs; i++ {
		if i%256 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		off := i * g.pebSize
		if err := readAt(r, b[:], off); err != nil {
			return nil, fmt.Errorf("ubi: PEB %d: reading its EC header: %w", i, err)
		}
		// A PEB whose EC header is damaged still holds its LEB, as the kernel
		// sees it; one that belongs to another image does not.
		if h, err := parseEC(b[:]); err == nil && !g.sameImage(h) {
			continue
		}
		if err := readAt(r, b[:], off+g.vidOff); err != nil {
			return nil, fmt.Errorf("ubi: PEB %d: reading its VID header: %w", i, err)
		}
		vid, err := parseVID(b[:])
		if errors.Is(err, errNoVID) {
			continue
		}
		if err == nil {
			err = vid.check(lebSize)
		}
		if err != nil {
			img.badVIDs = append(img.badVIDs, badVID{peb: i, volID: vid.volID, lnum: vid.lnum, err: err})
			continue
		}
		if i == g.pebs {
			img.cut = &leb{peb: i, vid: vid}
			continue
		}
		v := img.vols[vid.volID]
		if v == nil {
			v = &scanVol{id: vid.volID, cands: map[uint32][]leb{}}
			img.vols[vid.volID] = v
		}
		v.cands[vid.lnum] = append(v.cands[vid.lnum], leb{peb: i, vid: vid})
	}
	buf := make([]byte, lebSize)
	for _, v := range img.vols {
		v.chosen = make(map[uint32]leb, len(v.cands))
		for lnum, c := range v.cands {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			l, err := img.choose(v, lnum, c, buf)
			if err != nil {
				return nil, err
			}
			v.chosen[lnum] = l
		}
	}
	return img, nil
}

// choose picks the current copy of an LEB, as the kernel's ubi_compare_lebs
// does: the highest sequence number, unless that copy was being written by
// wear-levelling (copy_flag) and its data CRC shows the move did not finish.
func (img *image) choose(v *scanVol, lnum uint32, c []leb, buf []byte) (leb, error) {
	if len(c) == 1 && !c[0].vid.copyFlag {
		return c[0], nil
	}
	sort.SliceStable(c, func(i, j int) bool { return c[i].vid.sqnum > c[j].vid.sqnum })
	if len(c) > 1 && c[0].vid.sqnum == c[1].vid.sqnum {
		v.damage = append(v.damage, fmt.Sprintf("LEB %d is held by PEBs %d and %d with the same sequence number %d; PEB %d used",
			lnum, c[0].peb, c[1].peb, c[0].vid.sqnum, c[0].peb))
	}
	for _, l := range c {
		if !l.vid.copyFlag {
			return l, nil
		}
		ok, err := img.dataCRCOK(l, buf)
		if err != nil {
			return leb{}, err
		}
		if ok {
			return l, nil
		}
		v.damage = append(v.damage, fmt.Sprintf("LEB %d: the copy in PEB %d fails its data CRC", lnum, l.peb))
	}
	// No copy is sound; the newest is the best guess, and the damage is told.
	return c[0], nil
}

// dataCRCOK checks the data CRC of an LEB over the data size its VID header gives.
func (img *image) dataCRCOK(l leb, buf []byte) (bool, error) {
	d := buf[:l.vid.dataSize]
	if err := readAt(img.r, d, l.peb*img.g.pebSize+img.g.dataOff); err != nil {
		return false, fmt.Errorf("ubi: PEB %d: reading its data: %w", l.peb, err)
	}
	return crc(d) == l.vid.dataCRC, nil
}

// readAt fills b from off; an io.EOF that comes with all of b is no error.
func readAt(r io.ReaderAt, b []byte, off int64) error {
	n, err := r.ReadAt(b, off)
	if n == len(b) {
		return nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return err
}

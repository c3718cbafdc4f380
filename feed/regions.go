package feed

import (
	"errors"
	"fmt"
	"path"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/covid-backend/covid-backend/export"
	"github.com/covid-backend/covid-backend/fsm"
	"github.com/covid-backend/covid-backend/fsm/fsmpb"
)

// Foreign is the read side of other regions' kept batches; *fsm.FSM
// implements it.
type Foreign interface {
	ForeignBatches(origin string) []*fsmpb.ForeignBatch
	ForeignSigned(origin string, seq uint32) ([]byte, bool)
}

// RegionRoot is where a region's batch files are listed, for any region
// (this one included): the same paths on every node of every region.
func RegionRoot(origin string) string { return path.Join("v1/regions", origin, "exports") }

// BatchExportSig returns the export.sig of an own batch's export file, for
// the federation batch that carries it to other regions; nil when the
// batch needs several files or no export key is configured. ready is false
// while the file's replicated signatures are not kept yet (ask again).
func (c *Catalog) BatchExportSig(seq uint32) (sig []byte, ready bool) {
	for _, b := range c.src.Batches() {
		if b.Seq != seq || parts(b.Keys+b.Padding+b.Revised, c.cfg.MaxKeysPerFile) != 1 {
			continue
		}
		rel := fileSpec{start: b.StartUnix, end: b.EndUnix, part: 1}.rel()
		file, err := c.files.get("sig/"+rel, func() (*File, error) {
			f, err := c.File(time.Time{}, rel) // a batch file's name has no grace to check
			if err != nil {
				return nil, err
			}
			d, err := export.Decode(f.Data)
			if err != nil {
				return nil, err
			}
			return &File{Data: d.Sig}, nil
		})
		if err != nil {
			return nil, !errors.Is(err, ErrNotSigned)
		}
		return file.Data, true
	}
	return nil, true
}

// RegionIndex lists origin's batch files of the retention window, oldest
// first: this region's own, or another's from the batches kept here.
func (c *Catalog) RegionIndex(origin string, foreign Foreign, now time.Time) []string {
	var out []string
	oldest := dayOf(now.Unix()+1) - int64(c.cfg.Retention/time.Second)
	if origin == c.cfg.Region {
		for _, b := range c.src.Batches() {
			if dayOf(b.EndUnix) >= oldest && parts(b.Keys+b.Padding+b.Revised, c.cfg.MaxKeysPerFile) == 1 {
				out = append(out, path.Join(RegionRoot(origin), fileSpec{start: b.StartUnix, end: b.EndUnix, part: 1}.rel()))
			}
		}
		return out
	}
	for _, fb := range foreign.ForeignBatches(origin) {
		if dayOf(fb.GetEndUnix()) >= oldest && fb.GetHasExportSig() {
			out = append(out, path.Join(RegionRoot(origin), fileSpec{start: fb.GetStartUnix(), end: fb.GetEndUnix(), part: 1}.rel()))
		}
	}
	return out
}

// RegionFile returns a batch file of origin: this region's own file, or
// another region's rebuilt byte for byte from its kept batch and the
// origin's export.sig. now is as for File.
func (c *Catalog) RegionFile(now time.Time, origin, rel string, foreign Foreign) (*File, error) {
	if origin == c.cfg.Region {
		return c.File(now, rel)
	}
	spec, err := parseName(rel)
	if err != nil || spec.rollup || spec.part != 1 {
		return nil, ErrNotFound
	}
	return c.files.get("regions/"+origin+"/"+rel, func() (*File, error) {
		for _, fb := range foreign.ForeignBatches(origin) {
			if fb.GetStartUnix() != spec.start || fb.GetEndUnix() != spec.end || !fb.GetHasExportSig() {
				continue
			}
			body, sb, err := openForeign(foreign, origin, fb.GetSeq())
			if err != nil {
				return nil, fmt.Errorf("open %s batch %d: %w", origin, fb.GetSeq(), err)
			}
			data, err := export.Rebuild(foreignFile(body), sb.GetExportSig())
			if err != nil {
				return nil, fmt.Errorf("rebuild %s batch %d: %w", origin, fb.GetSeq(), err)
			}
			return newFile(data), nil
		}
		return nil, ErrNotFound
	})
}

func openForeign(foreign Foreign, origin string, seq uint32) (*fsmpb.FederationBatch, *fsmpb.SignedBatch, error) {
	raw, ok := foreign.ForeignSigned(origin, seq)
	if !ok {
		return nil, nil, ErrNotFound
	}
	var sb fsmpb.SignedBatch
	var body fsmpb.FederationBatch
	if err := proto.Unmarshal(raw, &sb); err != nil {
		return nil, nil, err
	}
	if err := proto.Unmarshal(sb.GetBody(), &body); err != nil {
		return nil, nil, err
	}
	return &body, &sb, nil
}

// foreignFile is the export file content of a federation batch, as its
// origin's catalog writes it for the batch.
func foreignFile(body *fsmpb.FederationBatch) export.File {
	f := export.File{Start: time.Unix(body.GetStartUnix(), 0), End: time.Unix(body.GetEndUnix(), 0),
		Region: body.GetOrigin(), BatchNum: 1, BatchSize: 1}
	for _, pk := range body.GetKeys() {
		if k, err := fsm.KeyFromProto(pk); err == nil {
			f.Keys = append(f.Keys, exportKey(k))
		}
	}
	for _, pk := range body.GetRevised() {
		if k, err := fsm.KeyFromProto(pk); err == nil {
			f.RevisedKeys = append(f.RevisedKeys, exportKey(k))
		}
	}
	return f
}

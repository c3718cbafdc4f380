package fsm

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"google.golang.org/protobuf/encoding/protowire"
)

// storedKey is a snapshot's fsmpb.StoredKey record as decodeStoredKey
// reads it: the same fields, read without reflection or allocation. A
// 1M-key snapshot holds a million of them, and reading them through
// proto.Unmarshal took half of its restore (BenchmarkRestore1M).
type storedKey struct {
	data                        []byte // aliases the record's bytes
	start, period, risk, report int32
	onset                       int32
	hasOnset                    bool
	submission, batch           uint32
	revoked, revised            bool
}

// key checks the fields as KeyFromProto does and returns the key.
func (r *storedKey) key() (Key, error) {
	k, err := newKey(r.data, r.start, r.period, r.risk, r.report, r.onset, r.hasOnset)
	if err != nil {
		return Key{}, err
	}
	k.Submission, k.Batch, k.Revoked, k.Revised = r.submission, r.batch, r.revoked, r.revised
	return k, nil
}

// decodeStoredKey decodes b as proto.Unmarshal decodes a StoredKey: fields
// in any order, the last of a repeated scalar wins, a repeated key message
// merges, unknown fields and fields of an unexpected wire type are
// skipped. FuzzDecodeStoredKey holds it to proto.Unmarshal.
func decodeStoredKey(b []byte, r *storedKey) error {
	*r = storedKey{}
	return eachField(b, func(num protowire.Number, v uint64, bytes []byte) error {
		switch num {
		case 1:
			return eachField(bytes, r.keyField)
		case 2:
			r.submission = uint32(v)
		case 3:
			r.batch = uint32(v)
		case 4:
			r.revoked = protowire.DecodeBool(v)
		case 5:
			r.revised = protowire.DecodeBool(v)
		}
		return nil
	})
}

// keyField sets one field of the nested fsmpb.Key.
func (r *storedKey) keyField(num protowire.Number, v uint64, bytes []byte) error {
	switch num {
	case 1:
		r.data = bytes
	case 2:
		r.start = int32(v)
	case 3:
		r.period = int32(v)
	case 4:
		r.risk = int32(v)
	case 5:
		r.report = int32(v)
	case 6:
		r.hasOnset = protowire.DecodeBool(v)
	case 7:
		r.onset = int32(protowire.DecodeZigZag(v & 0xffffffff))
	}
	return nil
}

// fieldType is the wire type of field num of a StoredKey and of a Key:
// field 1 is length-delimited in both (a message, the key's bytes), 2 to 7
// are varints; -1 for the numbers neither has.
func fieldType(num protowire.Number) protowire.Type {
	switch {
	case num == 1:
		return protowire.BytesType
	case num >= 2 && num <= 7:
		return protowire.VarintType
	}
	return -1
}

// eachField calls f with every field of b that a StoredKey or a Key has,
// with its wire type (a varint's value, or a length-delimited field's
// bytes), and skips the others as unknown fields.
func eachField(b []byte, f func(protowire.Number, uint64, []byte) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		known := fieldType(num) == typ
		switch {
		case known && typ == protowire.VarintType:
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return protowire.ParseError(n)
			}
			b = b[n:]
			if err := f(num, v, nil); err != nil {
				return err
			}
		case known && typ == protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return protowire.ParseError(n)
			}
			b = b[n:]
			if err := f(num, 0, v); err != nil {
				return err
			}
		default:
			n := protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return protowire.ParseError(n)
			}
			b = b[n:]
		}
	}
	return nil
}

// nextRecord returns the next length-delimited record of a snapshot,
// valid until the next read from br.
func nextRecord(br *bufio.Reader, buf *[]byte) ([]byte, error) {
	size, err := binary.ReadUvarint(br)
	switch {
	case errors.Is(err, io.EOF):
		return nil, io.ErrUnexpectedEOF
	case err != nil:
		return nil, err
	case size > maxRecordBytes:
		return nil, fmt.Errorf("record of %d bytes, at most %d", size, maxRecordBytes)
	}
	if b, err := br.Peek(int(size)); err == nil {
		br.Discard(int(size))
		return b, nil
	}
	if cap(*buf) < int(size) {
		*buf = make([]byte, size)
	}
	b := (*buf)[:size]
	if _, err := io.ReadFull(br, b); err != nil {
		return nil, fmt.Errorf("record of %d bytes: %w", size, err)
	}
	return b, nil
}

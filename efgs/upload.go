package efgs

import (
	"fmt"
	"mime"
	"net/http"
	"regexp"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/covid-backend/covid-backend/efgs/efgspb"
)

// Format is a body's format: the gateway speaks protobuf and JSON, both
// of version 1.0.
type Format int

// The formats of ParseContentType.
const (
	Protobuf Format = iota + 1
	JSON
)

// Refusal is an answer of the gateway that refuses: its status and the
// message of its {"message": …} body.
type Refusal struct {
	Status  int
	Message string
}

func (r *Refusal) Error() string { return fmt.Sprintf("%d %s", r.Status, r.Message) }

func refuse(status int, format string, args ...any) *Refusal {
	return &Refusal{Status: status, Message: fmt.Sprintf(format, args...)}
}

var versionPattern = regexp.MustCompile(`^[0-9]+\.[0-9]+$`)

// ParseContentType reads a Content-Type as the gateway does:
// application/protobuf or application/json with version=1.0; missing,
// unknown, without a version or not major.minor is 400, another version
// 406.
func ParseContentType(v string) (Format, *Refusal) {
	mt, params, err := mime.ParseMediaType(v)
	if err != nil {
		return 0, refuse(http.StatusBadRequest, "Content-Type %q: %v", v, err)
	}
	var f Format
	switch mt {
	case "application/protobuf":
		f = Protobuf
	case "application/json":
		f = JSON
	default:
		return 0, refuse(http.StatusBadRequest, "Content-Type %q: want application/protobuf or application/json", mt)
	}
	switch version := params["version"]; {
	case !versionPattern.MatchString(version):
		return 0, refuse(http.StatusBadRequest, "Content-Type %q: want a version=major.minor", v)
	case version != "1.0":
		return 0, refuse(http.StatusNotAcceptable, "version %s: this gateway speaks 1.0", version)
	}
	return f, nil
}

// ParseAccept reads a download's Accept as the gateway does: the
// protobuf or JSON batch at version 1.0 (none, or */*: protobuf); another
// type is 415, another version 406.
func ParseAccept(v string) (Format, *Refusal) {
	if v == "" || v == "*/*" {
		return Protobuf, nil
	}
	f, ref := ParseContentType(v)
	if ref != nil && ref.Status == http.StatusBadRequest {
		return 0, refuse(http.StatusUnsupportedMediaType, "Accept %q: want application/protobuf or application/json, version=1.0", v)
	}
	return f, ref
}

// ContentTypeOf is the content type of a batch in a format.
func ContentTypeOf(f Format) string {
	if f == JSON {
		return "application/json; version=1.0"
	}
	return ContentType
}

// EncodeBatch writes a DiagnosisKeyBatch in its format (JSON as
// DecodeBatch reads it).
func EncodeBatch(f Format, batch *efgspb.DiagnosisKeyBatch) ([]byte, error) {
	if f == JSON {
		return protojson.MarshalOptions{UseProtoNames: true}.Marshal(batch)
	}
	return proto.MarshalOptions{Deterministic: true}.Marshal(batch)
}

// DecodeBatch reads a DiagnosisKeyBatch in its format (JSON with the
// proto's field names, enum names, standard base64).
func DecodeBatch(f Format, body []byte) (*efgspb.DiagnosisKeyBatch, error) {
	batch := &efgspb.DiagnosisKeyBatch{}
	var err error
	if f == JSON {
		err = protojson.Unmarshal(body, batch)
	} else {
		err = proto.Unmarshal(body, batch)
	}
	return batch, err
}

// Upload is an upload that passed the gateway's checks.
type Upload struct {
	Keys   []*efgspb.DiagnosisKey
	Tag    string
	Signer string // the signing certificate's Thumbprint
}

// SignerOf tells the country whose registered signing certificate has a
// thumbprint (false: none registered, or revoked).
type SignerOf func(thumbprint string) (country string, ok bool)

// CheckUpload checks an upload of country's as the gateway does, in its
// order: the body parses in its format and every key passes the upload
// rules (400; one bad key refuses all), at most MaxUploadKeys (413), a tag
// of at most 64 characters (400), a signature that verifies with a
// signing certificate of the caller's country (400, "Invalid signature"),
// every key's origin that country (400). Whether the tag or a key was
// uploaded before (409, 207) is for the hub's state to say.
func CheckUpload(country, contentType, tag, signature string, body []byte, signers SignerOf, now time.Time) (Upload, *Refusal) {
	f, ref := ParseContentType(contentType)
	if ref != nil {
		return Upload{}, ref
	}
	batch, err := DecodeBatch(f, body)
	if err != nil {
		return Upload{}, refuse(http.StatusBadRequest, "the body is not a DiagnosisKeyBatch: %v", err)
	}
	for i, k := range batch.GetKeys() {
		if err := checkKey(k, now); err != nil {
			return Upload{}, refuse(http.StatusBadRequest, "Validation of diagnosis key failed: key %d: %v", i, err)
		}
	}
	switch n := len(batch.GetKeys()); {
	case n == 0:
		return Upload{}, refuse(http.StatusBadRequest, "Validation of diagnosis key failed: no keys")
	case n > MaxUploadKeys:
		return Upload{}, refuse(http.StatusRequestEntityTooLarge, "%d keys: at most %d in one upload", n, MaxUploadKeys)
	case tag == "" || len(tag) > 64:
		return Upload{}, refuse(http.StatusBadRequest, "batchTag: want 1 to 64 characters")
	}
	cert, err := VerifyBatch(batch.GetKeys(), signature, now)
	if err != nil {
		return Upload{}, refuse(http.StatusBadRequest, "Invalid signature")
	}
	if c, ok := signers(Thumbprint(cert)); !ok || c != country {
		return Upload{}, refuse(http.StatusBadRequest, "Invalid signature")
	}
	for i, k := range batch.GetKeys() {
		if k.GetOrigin() != country {
			return Upload{}, refuse(http.StatusBadRequest, "key %d: origin %q is not the uploader's country %s", i, k.GetOrigin(), country)
		}
	}
	return Upload{Keys: batch.GetKeys(), Tag: tag, Signer: Thumbprint(cert)}, nil
}

// Acceptable tells whether the gateway takes a key at time now (its
// upload rules, checkKey): a region leaves out what would be refused,
// such as keys older than the gateway's window when it uploads late.
func Acceptable(k *efgspb.DiagnosisKey, now time.Time) error { return checkKey(k, now) }

// checkKey applies the gateway's upload rules to one key: 16 bytes of
// data, a rolling start from 15 days before today (UTC) to the next
// interval, a rolling period of 1..144, a transmission risk of 0..8 or
// TRLNotUsed.
func checkKey(k *efgspb.DiagnosisKey, now time.Time) error {
	today := now.UTC().Truncate(24 * time.Hour)
	first, last := uint32(today.AddDate(0, 0, -15).Unix()/600), uint32(now.Unix()/600+1)
	switch trl := k.GetTransmissionRiskLevel(); {
	case len(k.GetKeyData()) != 16:
		return fmt.Errorf("keyData of %d bytes, want 16", len(k.GetKeyData()))
	case k.GetRollingStartIntervalNumber() < first || k.GetRollingStartIntervalNumber() > last:
		return fmt.Errorf("rollingStartIntervalNumber %d, want %d..%d", k.GetRollingStartIntervalNumber(), first, last)
	case k.GetRollingPeriod() < 1 || k.GetRollingPeriod() > 144:
		return fmt.Errorf("rollingPeriod %d, want 1..144", k.GetRollingPeriod())
	case (trl < 0 || trl > 8) && trl != TRLNotUsed:
		return fmt.Errorf("transmissionRiskLevel %d, want 0..8 or %d", trl, TRLNotUsed)
	}
	return nil
}

package verify

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"golang.org/x/time/rate"

	"github.com/covid-backend/covid-backend/command"
	"github.com/covid-backend/covid-backend/fsm/fsmpb"
	"github.com/covid-backend/covid-backend/sms"
)

// Issuing limits and defaults, as the reference's.
const (
	MaxBatchIssue      = 10
	maxUUIDLen         = 64
	issueCollisions    = 3
	defaultShortTTL    = 15 * time.Minute
	defaultLongTTL     = 24 * time.Hour
	defaultSMSTemplate = "Your exposure notification verification code: [code] (or open ens://v?r=[region]&c=[longcode] within [hours] hours)"
	// NonceBytes is the length of a user report's nonce.
	NonceBytes = 256
)

// IssuerConfig is what an Issuer needs: where codes are committed, the
// keys that hash them, their lifetimes and the SMS gateway.
type IssuerConfig struct {
	// Region commits the codes (node.Node).
	Region command.Applier
	// CodeKeys hash codes; the first makes.
	CodeKeys [][]byte
	// ShortTTL is how long a code lives (default 15 minutes). Without an
	// SMS gateway the long code lives as long.
	ShortTTL time.Duration
	// SMS sends long codes (nil: no SMS, and no user reports); LongTTL is
	// how long a code sent by SMS lives (default 24 hours); SMSTemplate is
	// the message, with [code], [longcode], [region] and [hours] filled in
	// (RegionName for [region]).
	SMS         sms.Sender
	LongTTL     time.Duration
	SMSTemplate string
	RegionName  string
	// Phones says which numbers get an SMS and how many (Phones).
	Phones Phones
	Now    func() time.Time
	Logger *slog.Logger
}

// Issuer issues verification codes by the reference's rules: it checks a
// request, draws a code pair, commits it through the region and, given a
// phone and an SMS gateway, sends the long code. The issuing API, the
// user-report API (package api) and the portal (package portal) all issue
// through it, so the rules live in one place.
type Issuer struct {
	cfg IssuerConfig
	// sent bounds the SMS this node sends (Phones.PerHour).
	sent *rate.Limiter
}

// NewIssuer returns an Issuer; a nil Now is time.Now, a nil Logger the
// default.
func NewIssuer(cfg IssuerConfig) *Issuer {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	perHour := cfg.Phones.perHour()
	return &Issuer{cfg: cfg, sent: rate.NewLimiter(rate.Limit(float64(perHour)/3600), perHour)}
}

// SMS tells whether the issuer sends codes by SMS (and so takes user
// reports).
func (i *Issuer) SMS() bool { return i.cfg.SMS != nil }

// LongTTL is how long a code sent by SMS lives.
func (i *Issuer) LongTTL() time.Duration {
	if i.cfg.LongTTL > 0 {
		return i.cfg.LongTTL
	}
	return defaultLongTTL
}

// Issue checks one request, issues its code pair for a provider and, given
// a phone and an SMS gateway, sends the long code (which then lives
// LongTTL).
func (i *Issuer) Issue(ctx context.Context, provider, issuedBy string, req IssueRequest) (IssueResponse, *Error) {
	rec, verr := i.record(provider, issuedBy, req)
	if verr != nil {
		return IssueResponse{}, verr
	}
	phone := ""
	if req.Phone != "" && i.cfg.SMS != nil {
		if phone, verr = i.cfg.Phones.Check(req.Phone); verr != nil {
			return IssueResponse{}, verr
		}
		rec.LongTtlSeconds = int64(i.LongTTL() / time.Second)
		rec.SmsTo = i.phoneHash(phone)
	}
	got, short, long, verr := i.commit(ctx, rec)
	if verr == nil && phone != "" {
		verr = i.send(ctx, got, phone, short, long)
	}
	if verr != nil {
		return IssueResponse{}, verr
	}
	return IssueResponse{UUID: got.GetUuid(), Code: short, LongCode: long, SentTo: phone,
		ExpiresAt: FormatExpiry(got.GetExpiresUnix()), ExpiresAtTimestamp: got.GetExpiresUnix(),
		LongExpiresAt: FormatExpiry(got.GetLongExpiresUnix()), LongExpiresAtTimestamp: got.GetLongExpiresUnix()}, nil
}

// AppCode is a code issued for a patient to type into an app.
type AppCode struct {
	UUID, Code      string
	Issued, Expires time.Time
}

// IssueForApp issues a code for a patient to type into an app that uploads
// with it directly (POST /v1/codes): the long code, living ttl, which the
// app sends as its upload's verificationPayload (the state machine claims
// it with the keys) or exchanges at /api/verify like any other code.
func (i *Issuer) IssueForApp(ctx context.Context, provider, issuedBy string, req IssueRequest, ttl time.Duration) (AppCode, *Error) {
	rec, verr := i.record(provider, issuedBy, req)
	if verr != nil {
		return AppCode{}, verr
	}
	rec.LongTtlSeconds = int64(ttl / time.Second)
	rec.ShortTtlSeconds = min(rec.GetShortTtlSeconds(), rec.GetLongTtlSeconds())
	got, _, long, verr := i.commit(ctx, rec)
	if verr != nil {
		return AppCode{}, verr
	}
	return AppCode{UUID: got.GetUuid(), Code: GroupCode(long), Issued: time.Unix(got.GetIssuedUnix(), 0).UTC(),
		Expires: time.Unix(got.GetLongExpiresUnix(), 0).UTC()}, nil
}

// Decoy is the answer a decoy issue request (X-Chaff) gets: a code pair
// as Issue would answer it, its uuid, code and times drawn and computed
// alike, committed nowhere.
func (i *Issuer) Decoy(req IssueRequest) IssueResponse {
	now := i.cfg.Now()
	short, long := i.shortTTL(), i.shortTTL()
	if req.Phone != "" && i.cfg.SMS != nil {
		long = i.LongTTL()
	}
	uuid := req.UUID
	if uuid == "" || len(uuid) > maxUUIDLen {
		uuid = NewUUID()
	}
	exp, longExp := now.Add(short).Unix(), now.Add(long).Unix()
	return IssueResponse{UUID: uuid, Code: NewShortCode(ShortCodeDigits), ExpiresAt: FormatExpiry(exp), ExpiresAtTimestamp: exp,
		LongExpiresAt: FormatExpiry(longExp), LongExpiresAtTimestamp: longExp}
}

func (i *Issuer) shortTTL() time.Duration {
	if i.cfg.ShortTTL > 0 {
		return i.cfg.ShortTTL
	}
	return defaultShortTTL
}

// CheckUserReport checks a user report's nonce and phone, with the
// reference's error codes, and returns the nonce and the phone as sent.
func (i *Issuer) CheckUserReport(rawNonce, rawPhone string) ([]byte, string, *Error) {
	if i.cfg.SMS == nil {
		return nil, "", fail(http.StatusBadRequest, CodeUnsupportedTestType, "user reports are not offered here (no SMS gateway)")
	}
	nonce, err := DecodeNonce(rawNonce)
	switch {
	case err != nil:
		return nil, "", fail(http.StatusBadRequest, CodeUnparsableRequest, err.Error())
	case len(nonce) == 0:
		return nil, "", fail(http.StatusBadRequest, CodeMissingNonce, "nonce cannot be empty")
	case len(nonce) != NonceBytes:
		return nil, "", fail(http.StatusBadRequest, CodeUnparsableRequest, "nonce: want 256 random bytes in base64")
	case strings.TrimSpace(rawPhone) == "":
		return nil, "", fail(http.StatusBadRequest, CodeMissingPhone, "phone cannot be empty")
	}
	phone, verr := i.cfg.Phones.Check(rawPhone)
	return nonce, phone, verr
}

// UserReport issues a user-report code bound to the app's nonce and sends
// it to the phone (both checked by CheckUserReport); it returns when the
// code expires. A phone that has a live report is answered as the first
// time and sent nothing, as the reference answers: the answer must not
// tell who reported.
func (i *Issuer) UserReport(ctx context.Context, req IssueRequest, nonce []byte, phone string) (int64, *Error) {
	req.TestType = TestUserReport
	rec, verr := i.record("", "user-report", req)
	if verr != nil {
		return 0, verr
	}
	nh := sha256.Sum256(nonce)
	rec.Uuid = NewUUID()
	rec.NonceHash, rec.PhoneHash, rec.SmsTo = nh[:], i.phoneHash(phone), i.phoneHash(phone)
	rec.LongTtlSeconds = int64(i.LongTTL() / time.Second)
	got, short, long, verr := i.commit(ctx, rec)
	switch {
	case verr != nil && (verr.Code == CodeUserReportExists || verr.Code == CodeNumberQuota):
		// As the reference answers a second report: no answer tells
		// whether this number reported, or was sent codes, before.
		return i.cfg.Now().Add(i.LongTTL()).Unix(), nil
	case verr != nil:
		return 0, verr
	}
	if verr := i.send(ctx, got, phone, short, long); verr != nil {
		return 0, verr
	}
	return got.GetLongExpiresUnix(), nil
}

// phoneHash is the keyed hash under which the state knows a number.
func (i *Issuer) phoneHash(phone string) []byte { return Hash(i.cfg.CodeKeys[0], "phone:"+phone) }

// commit draws a code pair for the record and commits it, drawing again
// when the values collide with a live code; it returns the record as
// stored and the two codes.
func (i *Issuer) commit(ctx context.Context, rec *fsmpb.VerificationCode) (*fsmpb.VerificationCode, string, string, *Error) {
	for range issueCollisions {
		short, long := NewShortCode(ShortCodeDigits), NewLongCode(LongCodeLength)
		rec.ShortHash, rec.LongHash = Hash(i.cfg.CodeKeys[0], short), Hash(i.cfg.CodeKeys[0], long)
		if rec.GetBulkRun() != "" && len(rec.GetSmsTo()) == 0 {
			rec.SealedCode = BulkCodes().Seal(i.cfg.CodeKeys[0], rec.GetUuid(), []byte(short))
		}
		got, err := command.IssueVerificationCode(ctx, i.cfg.Region, rec)
		var refused *command.Error
		switch {
		case errors.As(err, &refused) && refused.Code == command.CodeCodeCollision:
			continue
		case errors.As(err, &refused) && FromRefusal(refused) != nil:
			return nil, "", "", FromRefusal(refused)
		case err != nil:
			i.cfg.Logger.Error("issue verification code", "err", err)
			return nil, "", "", fail(http.StatusServiceUnavailable, CodeUnavailable, "region not ready, retry")
		}
		return got, short, long, nil
	}
	return nil, "", "", fail(http.StatusServiceUnavailable, CodeUnavailable, "could not draw a free code, retry")
}

// record checks an issue request by the reference's rules and builds the
// record to issue (hashes still to be drawn).
func (i *Issuer) record(provider, issuedBy string, req IssueRequest) (*fsmpb.VerificationCode, *Error) {
	now := i.cfg.Now()
	req.TestType = strings.ToLower(req.TestType) // the reference lowercases
	known := false
	for _, t := range TestTypes {
		known = known || t == req.TestType
	}
	if !known {
		return nil, fail(http.StatusBadRequest, CodeInvalidTestType, "testType: want confirmed, likely, negative or user-report")
	}
	testDay, verr := ParseDay(req.TestDate, req.TZOffset, now)
	if verr != nil {
		return nil, verr
	}
	symptomDay, verr := ParseDay(req.SymptomDate, req.TZOffset, now)
	if verr != nil {
		return nil, verr
	}
	if len(req.UUID) > maxUUIDLen {
		return nil, fail(http.StatusBadRequest, CodeUnparsableRequest, "uuid: at most 64 characters")
	}
	uuid := req.UUID
	if uuid == "" {
		uuid = NewUUID()
	}
	// No SMS gateway sends the long code yet: it lives as long as the
	// short one, as the reference's does without SMS.
	short := i.shortTTL()
	return &fsmpb.VerificationCode{Uuid: uuid, Provider: provider, IssuedBy: issuedBy, TestType: req.TestType,
		TestDay: testDay, SymptomDay: symptomDay, BulkRun: req.Run, BulkLine: int32(req.Line),
		ShortTtlSeconds: int64(short / time.Second), LongTtlSeconds: int64(short / time.Second)}, nil
}

// send sends the long code of a code pair just issued; when the gateway
// fails the code is expired at once, so that no code is out that its
// patient never got.
func (i *Issuer) send(ctx context.Context, rec *fsmpb.VerificationCode, phone, short, long string) *Error {
	if !i.sent.AllowN(i.cfg.Now(), 1) {
		i.cfg.Logger.Warn("sms quota of this node reached: code not sent and expired (raise --sms-per-hour if this is real demand)",
			"per_hour", i.cfg.Phones.perHour(), "uuid", rec.GetUuid())
		i.expire(ctx, rec)
		return fail(http.StatusServiceUnavailable, CodeSMSQuota, "this node has sent as many SMS as it may this hour; the code was expired; try again later")
	}
	if err := i.cfg.SMS.Send(ctx, phone, i.message(short, long)); err != nil {
		i.cfg.Logger.Warn("sms not sent; the code is expired", "uuid", rec.GetUuid(), "err", err)
		i.expire(ctx, rec)
		return fail(http.StatusInternalServerError, "sms_failure", "the SMS could not be sent; the code was expired")
	}
	return nil
}

// expire ends a code whose SMS did not go out.
func (i *Issuer) expire(ctx context.Context, rec *fsmpb.VerificationCode) {
	if _, err := command.ExpireVerificationCode(ctx, i.cfg.Region, rec.GetUuid(), rec.GetProvider()); err != nil {
		i.cfg.Logger.Error("expire a code whose sms was not sent", "uuid", rec.GetUuid(), "err", err)
	}
}

// message fills the SMS template for one code pair.
func (i *Issuer) message(short, long string) string {
	t := i.cfg.SMSTemplate
	if t == "" {
		t = defaultSMSTemplate
	}
	return strings.NewReplacer("[code]", short, "[longcode]", long, "[region]", i.cfg.RegionName,
		"[hours]", strconv.Itoa(int(i.LongTTL()/time.Hour))).Replace(t)
}

// NewUUID draws a version 4 UUID for a code issued without one.
func NewUUID() string {
	b := make([]byte, 16)
	rand.Read(b) // never fails (crypto/rand aborts the program instead)
	b[6], b[8] = b[6]&0x0f|0x40, b[8]&0x3f|0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

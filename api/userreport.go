package api

import (
	"context"
	"crypto/sha256"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/covid-backend/covid-backend/command"
	"github.com/covid-backend/covid-backend/fsm/fsmpb"
	"github.com/covid-backend/covid-backend/publish"
	"github.com/covid-backend/covid-backend/verify"
)

// Defaults of codes sent by SMS.
const (
	defaultLongTTL     = 24 * time.Hour
	defaultSMSTemplate = "Your exposure notification verification code: [code] (or open ens://v?r=[region]&c=[longcode] within [hours] hours)"
	nonceBytes         = 256
)

// longTTL is how long a code sent by SMS lives.
func (v *Verification) longTTL() time.Duration {
	if v.LongTTL > 0 {
		return v.LongTTL
	}
	return defaultLongTTL
}

// smsMessage fills the template for one code pair.
func (v *Verification) smsMessage(short, long string) string {
	t := v.SMSTemplate
	if t == "" {
		t = defaultSMSTemplate
	}
	return strings.NewReplacer("[code]", short, "[longcode]", long, "[region]", v.Region,
		"[hours]", strconv.Itoa(int(v.longTTL()/time.Hour))).Replace(t)
}

// checkPhone keeps digits and a leading + of a phone number, which must
// have 6 to 15 digits (E.164).
func checkPhone(phone string) (string, *verify.Error) {
	var b strings.Builder
	for i, r := range strings.TrimSpace(phone) {
		switch {
		case r >= '0' && r <= '9', r == '+' && i == 0:
			b.WriteRune(r)
		case r == ' ' || r == '-' || r == '(' || r == ')':
		default:
			return "", &verify.Error{Status: http.StatusBadRequest, Code: verify.CodePhoneInvalid, Message: "phone: not a phone number"}
		}
	}
	if n := len(strings.TrimPrefix(b.String(), "+")); n < 6 || n > 15 {
		return "", &verify.Error{Status: http.StatusBadRequest, Code: verify.CodePhoneInvalid, Message: "phone: want 6 to 15 digits"}
	}
	return b.String(), nil
}

// checkUserReport checks a user report's nonce and phone, with the
// reference's error codes.
func (s *Server) checkUserReport(rawNonce, rawPhone string) *verify.Error {
	if s.cfg.Verification.SMS == nil {
		return &verify.Error{Status: http.StatusBadRequest, Code: verify.CodeUnsupportedTestType, Message: "user reports are not offered here (no SMS gateway)"}
	}
	nonce, err := verify.DecodeNonce(rawNonce)
	switch {
	case err != nil:
		return &verify.Error{Status: http.StatusBadRequest, Code: verify.CodeUnparsableRequest, Message: err.Error()}
	case len(nonce) == 0:
		return &verify.Error{Status: http.StatusBadRequest, Code: verify.CodeMissingNonce, Message: "nonce cannot be empty"}
	case len(nonce) != nonceBytes:
		return &verify.Error{Status: http.StatusBadRequest, Code: verify.CodeUnparsableRequest, Message: "nonce: want 256 random bytes in base64"}
	case strings.TrimSpace(rawPhone) == "":
		return &verify.Error{Status: http.StatusBadRequest, Code: verify.CodeMissingPhone, Message: "phone cannot be empty"}
	}
	_, verr := checkPhone(rawPhone)
	return verr
}

// sendCode sends the long code of a code pair just issued; when the
// gateway fails the code is expired at once, so that no code is out that
// its patient never got.
func (s *Server) sendCode(ctx context.Context, rec *fsmpb.VerificationCode, phone, short, long string) *verify.Error {
	v := s.cfg.Verification
	if err := v.SMS.Send(ctx, phone, v.smsMessage(short, long)); err != nil {
		s.cfg.Logger.Warn("sms not sent; the code is expired", "uuid", rec.GetUuid(), "err", err)
		if _, err := command.ExpireVerificationCode(ctx, s.node, rec.GetUuid(), rec.GetProvider()); err != nil {
			s.cfg.Logger.Error("expire a code whose sms failed", "uuid", rec.GetUuid(), "err", err)
		}
		return &verify.Error{Status: http.StatusInternalServerError, Code: "sms_failure", Message: "the SMS could not be sent; the code was expired"}
	}
	return nil
}

// userReport is POST /api/user-report: a person without a lab test asks
// for a code by SMS to self-report. Only with an SMS gateway (otherwise,
// as a realm without user reports, 400 unsupported_test_type); one live
// report per phone; the code is bound to the app's nonce. A phone that has
// a live report is answered 200 as the first time and sent nothing, as the
// reference answers: the answer must not tell who reported.
func (s *Server) userReport(c *gin.Context) {
	var req struct {
		verify.IssueRequest
		Nonce string `json:"nonce"`
	}
	if !decodeVerify(c, &req, verify.CodeUnparsableRequest) {
		return
	}
	if verr := s.checkUserReport(req.Nonce, req.Phone); verr != nil {
		verifyFail(c, verr)
		return
	}
	v := s.cfg.Verification
	nonce, _ := verify.DecodeNonce(req.Nonce)
	phone, _ := checkPhone(req.Phone)
	req.TestType = verify.TestUserReport
	rec, verr := s.codeRecord("", "user-report", req.IssueRequest)
	if verr != nil {
		verifyFail(c, verr)
		return
	}
	nh := sha256.Sum256(nonce)
	rec.Uuid = newUUID()
	rec.NonceHash, rec.PhoneHash = nh[:], verify.Hash(s.codeKeys[0], "phone:"+phone)
	rec.LongTtlSeconds = int64(v.longTTL() / time.Second)
	got, short, long, verr := s.issueRecord(c.Request.Context(), rec)
	switch {
	case verr != nil && verr.Code == verify.CodeUserReportExists:
		expires := s.cfg.Now().Add(v.longTTL()).Unix()
		verr, got = nil, &fsmpb.VerificationCode{LongExpiresUnix: expires}
	case verr == nil:
		verr = s.sendCode(c.Request.Context(), got, phone, short, long)
	}
	if verr != nil {
		verifyFail(c, verr)
		return
	}
	c.JSON(http.StatusOK, gin.H{"expiresAt": verify.FormatExpiry(got.GetLongExpiresUnix()),
		"expiresAtTimestamp": got.GetLongExpiresUnix(), "padding": publish.Padding()})
}

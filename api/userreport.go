package api

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/covid-backend/covid-backend/publish"
	"github.com/covid-backend/covid-backend/verify"
)

// userReport is POST /api/user-report: a person without a lab test asks
// for a code by SMS to self-report (verify.Issuer.UserReport). Only with
// an SMS gateway (otherwise, as a realm without user reports, 400
// unsupported_test_type); the code is bound to the app's nonce.
func (s *Server) userReport(c *gin.Context) {
	var req struct {
		verify.IssueRequest
		Nonce string `json:"nonce"`
	}
	if !decodeVerify(c, &req, verify.CodeUnparsableRequest) {
		return
	}
	nonce, phone, verr := s.issuer.CheckUserReport(req.Nonce, req.Phone)
	if verr != nil {
		verifyFail(c, verr)
		return
	}
	expires, verr := s.issuer.UserReport(c.Request.Context(), req.IssueRequest, nonce, phone)
	if verr != nil {
		verifyFail(c, verr)
		return
	}
	c.JSON(http.StatusOK, gin.H{"expiresAt": verify.FormatExpiry(expires), "expiresAtTimestamp": expires, "padding": publish.Padding()})
}

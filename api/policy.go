package api

import (
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/covid-backend/covid-backend/command"
	"github.com/covid-backend/covid-backend/fsm"
	"github.com/covid-backend/covid-backend/fsm/fsmpb"
)

// PolicyRequest changes the region policy; fields left out keep their
// value. Durations are Go durations ("336h", "15m").
type PolicyRequest struct {
	Retention         string  `json:"retention,omitempty"`
	CodeTTL           string  `json:"code_ttl,omitempty"`
	SealMinKeys       *uint32 `json:"seal_min_keys,omitempty"`
	SealPaddingJitter *uint32 `json:"seal_padding_jitter,omitempty"`
	NoPadding         bool    `json:"no_padding,omitempty"`
	// PaddingKeysPerDay pads by the day (package padding) with this budget.
	PaddingKeysPerDay uint32 `json:"padding_keys_per_day,omitempty"`
	// SMSPerHour and SMSPerNumberPerDay are the region's SMS quotas.
	SMSPerHour         uint32 `json:"sms_per_hour,omitempty"`
	SMSPerNumberPerDay uint32 `json:"sms_per_number_per_day,omitempty"`
	// CodesPerProviderPerDay is the codes one provider issues in 24 hours.
	CodesPerProviderPerDay uint32 `json:"codes_per_provider_per_day,omitempty"`
}

// PolicyView is the region policy in force.
type PolicyView struct {
	Retention         string `json:"retention"`
	CodeTTL           string `json:"code_ttl"`
	SealMinKeys       uint32 `json:"seal_min_keys"`
	SealPaddingJitter uint32 `json:"seal_padding_jitter"`
	NoPadding         bool   `json:"no_padding"`
	// PaddingKeysPerDay is the day budget of padding by the day (0: each
	// batch is padded to SealMinKeys instead, or not at all).
	PaddingKeysPerDay uint32 `json:"padding_keys_per_day"`
	// SMSPerHour codes go out by SMS in any hour, region-wide, and
	// SMSPerNumberPerDay to one number in any 24 hours; SMSLastHour were
	// sent in the last hour.
	SMSPerHour         uint32 `json:"sms_per_hour"`
	SMSPerNumberPerDay uint32 `json:"sms_per_number_per_day"`
	SMSLastHour        uint32 `json:"sms_last_hour"`
	// CodesPerProviderPerDay codes one provider may issue in 24 hours.
	CodesPerProviderPerDay uint32 `json:"codes_per_provider_per_day"`
	// Set is false while the region has no replicated policy yet (this
	// node then follows its own flags).
	Set bool `json:"set"`
}

func (s *Server) policyView(p *fsmpb.Policy, set bool) PolicyView {
	perHour, perNumber := fsm.SMSQuotas(p)
	return PolicyView{
		Retention:   (time.Duration(p.GetRetentionSeconds()) * time.Second).String(),
		CodeTTL:     (time.Duration(p.GetCodeTtlSeconds()) * time.Second).String(),
		SealMinKeys: p.GetSealMinKeys(), SealPaddingJitter: p.GetSealPaddingJitter(), NoPadding: p.GetNoPadding(),
		PaddingKeysPerDay: p.GetPaddingKeysPerDay(),
		SMSPerHour:        perHour, SMSPerNumberPerDay: perNumber, SMSLastHour: s.node.FSM().SMSSentLastHour(s.cfg.Now().Unix()),
		CodesPerProviderPerDay: fsm.ProviderQuota(p),
		Set:                    set,
	}
}

func (s *Server) getPolicy(c *gin.Context) {
	c.JSON(http.StatusOK, s.policyView(s.node.Policy()))
}

// setPolicy is PUT /v1/admin/policy: one replicated change that every node
// follows, whatever its flags say.
func (s *Server) setPolicy(c *gin.Context) {
	var req PolicyRequest
	if !bindStrict(c, &req) {
		return
	}
	p := &fsmpb.Policy{NoPadding: req.NoPadding, SmsPerHour: req.SMSPerHour, SmsPerNumberPerDay: req.SMSPerNumberPerDay,
		CodesPerProviderPerDay: req.CodesPerProviderPerDay, PaddingKeysPerDay: req.PaddingKeysPerDay}
	if v := s.node.RegionVersion(); req.PaddingKeysPerDay != 0 && v < command.DayPadding {
		failErr(c, &command.ErrUpgradePending{Type: fsmpb.CommandType_COMMAND_TYPE_SET_POLICY, Need: command.DayPadding, Region: v})
		return
	}
	for _, d := range []struct {
		name, value string
		into        *int64
	}{{"retention", req.Retention, &p.RetentionSeconds}, {"code_ttl", req.CodeTTL, &p.CodeTtlSeconds}} {
		if d.value == "" {
			continue
		}
		v, err := time.ParseDuration(d.value)
		if err != nil || v < time.Second {
			fail(c, http.StatusBadRequest, "bad_request", d.name+": want a duration of at least 1s, such as 336h")
			return
		}
		*d.into = int64(v / time.Second)
	}
	if req.SealMinKeys != nil {
		if *req.SealMinKeys == 0 {
			fail(c, http.StatusBadRequest, "bad_request", "seal_min_keys: want at least 1; no_padding turns padding off")
			return
		}
		p.SealMinKeys = *req.SealMinKeys
	}
	if req.SealPaddingJitter != nil {
		p.SealPaddingJitter = *req.SealPaddingJitter
	}
	res, err := command.SetPolicy(c.Request.Context(), s.node, p)
	if err != nil {
		failErr(c, err)
		return
	}
	c.JSON(http.StatusOK, s.policyView(res, true))
}

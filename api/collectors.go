package api

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/covid-backend/covid-backend/federation"
	"github.com/covid-backend/covid-backend/fsm"
)

// codeStates reports the verification codes held, by state, and the codes
// the region sent by SMS in the last hour against its quota, at each
// scrape.
type codeStates struct {
	f   *fsm.FSM
	now func() time.Time
}

var (
	codesDesc    = prometheus.NewDesc("covid_verification_codes", "Verification codes held, by state (unused, used, expired).", []string{"state"}, nil)
	smsSentDesc  = prometheus.NewDesc("covid_sms_sent_last_hour", "Codes the region sent by SMS in the last hour.", nil, nil)
	smsQuotaDesc = prometheus.NewDesc("covid_sms_quota_per_hour", "Codes the region may send by SMS in any hour (its policy).", nil, nil)
	issuedDesc   = prometheus.NewDesc("covid_codes_issued_last_day", "Codes a provider issued in the last 24 hours.", []string{"provider"}, nil)
	quotaDesc    = prometheus.NewDesc("covid_codes_quota_per_provider", "Codes one provider may issue in any 24 hours (the policy).", nil, nil)
	usedDesc     = prometheus.NewDesc("covid_codes_used_last_day", "Of the codes a provider issued in the last 24 hours, those used (a falling share: abuse, or a broken process).", []string{"provider"}, nil)
)

func (c codeStates) Describe(ch chan<- *prometheus.Desc) {
	ch <- codesDesc
	ch <- smsSentDesc
	ch <- smsQuotaDesc
	ch <- issuedDesc
	ch <- usedDesc
	ch <- quotaDesc
}

func (c codeStates) Collect(ch chan<- prometheus.Metric) {
	count := map[string]float64{"unused": 0, "used": 0, "expired": 0}
	issued, used := map[string]float64{}, map[string]float64{}
	now := c.now().Unix()
	for _, code := range c.f.VerificationCodesAll() {
		if p := code.GetProvider(); p != "" && code.GetIssuedUnix() > now-86_400 {
			issued[p]++
			if code.GetClaimedUnix() != 0 {
				used[p]++
			}
		}
		switch {
		case code.GetClaimedUnix() != 0:
			count["used"]++
		case now >= code.GetLongExpiresUnix():
			count["expired"]++
		default:
			count["unused"]++
		}
	}
	for state, n := range count {
		ch <- prometheus.MustNewConstMetric(codesDesc, prometheus.GaugeValue, n, state)
	}
	policy, _ := c.f.Policy()
	perHour, _ := fsm.SMSQuotas(policy)
	ch <- prometheus.MustNewConstMetric(smsSentDesc, prometheus.GaugeValue, float64(c.f.SMSSentLastHour(now)))
	ch <- prometheus.MustNewConstMetric(smsQuotaDesc, prometheus.GaugeValue, float64(perHour))
	ch <- prometheus.MustNewConstMetric(quotaDesc, prometheus.GaugeValue, float64(fsm.ProviderQuota(policy)))
	for p, n := range issued {
		ch <- prometheus.MustNewConstMetric(issuedDesc, prometheus.GaugeValue, n, p)
		ch <- prometheus.MustNewConstMetric(usedDesc, prometheus.GaugeValue, used[p], p)
	}
}

// federationCollector reports, per trusted origin, how far this region is
// behind what other regions announce and when it last took a batch, and
// the batches refused, by reason.
type federationCollector struct {
	pool *federation.Pool
	fsm  *fsm.FSM
}

var (
	fedLagDesc      = prometheus.NewDesc("covid_federation_lag_batches", "Batches of an origin announced elsewhere and not kept here.", []string{"origin"}, nil)
	fedReceivedDesc = prometheus.NewDesc("covid_federation_last_received_seconds", "Since this node last imported a batch of an origin (only the leader imports).", []string{"origin"}, nil)
	fedRejectedDesc = prometheus.NewDesc("covid_federation_rejected_total", "Fetched batches refused, by reason.", []string{"reason"}, nil)
)

func (c federationCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- fedLagDesc
	ch <- fedReceivedDesc
	ch <- fedRejectedDesc
}

func (c federationCollector) Collect(ch chan<- prometheus.Metric) {
	if c.pool == nil {
		return
	}
	st := c.pool.Status()
	for origin, remote := range st.Remote {
		next, _ := c.fsm.NextForeign(origin)
		lag := float64(0)
		if int64(remote) >= int64(next) {
			lag = float64(int64(remote) - int64(next) + 1)
		}
		ch <- prometheus.MustNewConstMetric(fedLagDesc, prometheus.GaugeValue, lag, origin)
	}
	for origin, at := range st.LastReceived {
		ch <- prometheus.MustNewConstMetric(fedReceivedDesc, prometheus.GaugeValue, time.Since(at).Seconds(), origin)
	}
	for reason, n := range st.Rejected {
		ch <- prometheus.MustNewConstMetric(fedRejectedDesc, prometheus.CounterValue, float64(n), reason)
	}
}

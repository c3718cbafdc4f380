package stats

import (
	"slices"
	"time"
)

// Document is a series as the stats API serves it: the GAEN reference
// verification server's /api/stats/realm.json shape (statistics, newest
// day first, each a date and its data), with this region's figures. A
// count that is not Visible, and the waits of fewer than threshold codes
// used, are null: the API says no more than the pages do.
type Document struct {
	Region string `json:"region"`
	// Provider names the provider the figures are of (empty: the region).
	Provider   string        `json:"provider,omitempty"`
	Statistics []DocumentDay `json:"statistics"`
}

// DocumentDay is one day of a Document.
type DocumentDay struct {
	Date time.Time    `json:"date"`
	Data DocumentData `json:"data"`
}

// DocumentData are a day's figures under the reference's names where it
// has them (codes_issued, codes_claimed, code_claim_mean_age_seconds,
// total_publish_requests, total_teks_published) and names of the same
// style where it has none.
type DocumentData struct {
	CodesIssued         *int   `json:"codes_issued"`
	CodesClaimed        *int   `json:"codes_claimed"`
	CodesExpired        *int   `json:"codes_expired"`
	CodeClaimMeanAge    *int64 `json:"code_claim_mean_age_seconds"`
	CodeClaimMedianAge  *int64 `json:"code_claim_median_age_seconds"`
	TotalPublishRequest *int   `json:"total_publish_requests"`
	TotalTEKsPublished  *int   `json:"total_teks_published"`
}

// NewDocument shapes a series for the stats API, newest day first.
func NewDocument(region string, s Series, threshold int) Document {
	doc := Document{Region: region, Provider: s.Provider, Statistics: make([]DocumentDay, 0, len(s.Days))}
	for _, d := range slices.Backward(s.Days) {
		f := figuresShown(d, threshold)
		data := DocumentData{CodesIssued: shown(d.Issued, f.issued), CodesClaimed: shown(d.Used, f.used), CodesExpired: shown(d.Expired, f.expired),
			TotalPublishRequest: shown(d.Uploads, f.uploads), TotalTEKsPublished: shown(d.Keys, f.keys)}
		if f.waits {
			mean, median := int64(d.MeanWait.Seconds()), int64(d.MedianWait.Seconds())
			data.CodeClaimMeanAge, data.CodeClaimMedianAge = &mean, &median
		}
		doc.Statistics = append(doc.Statistics, DocumentDay{Date: d.Date, Data: data})
	}
	return doc
}

// shown is n, or nil where it is held back.
func shown(n int, ok bool) *int {
	if !ok {
		return nil
	}
	return &n
}

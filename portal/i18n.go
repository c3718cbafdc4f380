package portal

import (
	"embed"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
	xcatalog "golang.org/x/text/message/catalog"
)

// The portal speaks English and Dutch. English text is the key of every
// message (templates call {{$.T "…"}}, Go code marks its texts with msg or
// formats them with tr), and locales/nl.json gives each its Dutch;
// TestEveryTextTranslated holds the two complete.
//
//go:embed locales/*.json
var localeFiles embed.FS

// langCookie keeps the language a worker chose with the switch.
const langCookie = "portal_lang"

// ctxLang is where a request's language is kept.
const ctxLang = "portal.lang"

// translations are the portal's catalog: which languages it has, how a
// browser's Accept-Language is matched to one, and the Dutch texts.
type translations struct {
	matcher language.Matcher
	dutch   map[string]string
	catalog *xcatalog.Builder
}

func loadTranslations() (*translations, error) {
	b, err := localeFiles.ReadFile("locales/nl.json")
	if err != nil {
		return nil, fmt.Errorf("portal: Dutch texts: %w", err)
	}
	tr := &translations{matcher: language.NewMatcher([]language.Tag{language.English, language.Dutch}),
		catalog: xcatalog.NewBuilder(xcatalog.Fallback(language.English))}
	if err := json.Unmarshal(b, &tr.dutch); err != nil {
		return nil, fmt.Errorf("portal: locales/nl.json: %w", err)
	}
	for key, text := range tr.dutch {
		if err := tr.catalog.SetString(language.Dutch, key, text); err != nil {
			return nil, fmt.Errorf("portal: locales/nl.json %q: %w", key, err)
		}
	}
	return tr, nil
}

// lang is one request's language.
type lang struct {
	// Code names it for the page (html lang), Other the language the
	// switch offers, OtherName that language in itself.
	Code, Other, OtherName string
	texts                  map[string]string // nil: English
	printer                *message.Printer
}

// T is the text in the request's language: a key of the catalog, or (a
// text not in it, such as a refusal of the state machine) as it is; with
// args, the key is a format (numbers written the language's way).
func (l lang) T(key string, args ...any) string {
	if len(args) > 0 {
		return l.printer.Sprintf(key, args...)
	}
	if t, ok := l.texts[key]; ok {
		return t
	}
	return key
}

// language picks a request's language: the switch (?lang=, remembered in
// a cookie), else the cookie, else the browser's Accept-Language.
func (p *Portal) language(c *gin.Context) lang {
	if l, ok := c.Get(ctxLang); ok {
		return l.(lang)
	}
	choice := c.Query("lang")
	if choice == "en" || choice == "nl" {
		http.SetCookie(c.Writer, &http.Cookie{Name: langCookie, Value: choice, Path: "/portal", MaxAge: int(365 * 24 * time.Hour / time.Second),
			Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode})
	} else if ck, err := c.Cookie(langCookie); err == nil {
		choice = ck
	}
	tag, _ := language.MatchStrings(p.texts.matcher, choice, c.GetHeader("Accept-Language"))
	l := lang{Code: "en", Other: "nl", OtherName: "Nederlands", printer: message.NewPrinter(language.English, message.Catalog(p.texts.catalog))}
	if base, _ := tag.Base(); base.String() == "nl" {
		l = lang{Code: "nl", Other: "en", OtherName: "English", texts: p.texts.dutch, printer: message.NewPrinter(language.Dutch, message.Catalog(p.texts.catalog))}
	}
	c.Set(ctxLang, l)
	return l
}

// tr is a text in the request's language (lang.T).
func (p *Portal) tr(c *gin.Context, key string, args ...any) string {
	return p.language(c).T(key, args...)
}

// msg marks an English text the portal shows as a key of the catalog; the
// page translates it when it is shown.
func msg(key string) string { return key }

// T is a text of the page in its language (lang.T).
func (pg page) T(key string, args ...any) string { return pg.Lang.T(key, args...) }

// TH is a text of the page that holds markup of the catalog's own (code,
// strong); no argument may come from a user.
func (pg page) TH(key string, args ...any) template.HTML {
	return template.HTML(pg.Lang.T(key, args...))
}

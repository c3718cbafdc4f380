package portal

import (
	"net/http"

	"github.com/gin-gonic/gin"
)

// confirmation asks before a write that cannot be undone (expiring a code,
// rolling back a submission): a page that says what will happen, with the
// same form again, confirmed, and a way back. It needs no script, and a
// reload of it writes nothing.
type confirmation struct {
	Question, Action, Button, Back string
	Fields                         []field
}

// field is a form field the confirmation sends again.
type field struct{ Name, Value string }

// confirmed tells whether the form was confirmed; if not, it shows the
// confirmation page, and the caller writes nothing.
func (p *Portal) confirmed(c *gin.Context, conf confirmation) bool {
	if c.PostForm("confirmed") == "yes" {
		return true
	}
	p.render(c, http.StatusOK, "confirm.html", page{Title: msg("Are you sure?"), Data: conf})
	return false
}

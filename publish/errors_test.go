package publish

import (
	"encoding/json"
	"errors"
	"net/http"
	"reflect"
	"testing"
)

func TestErrorAnswer(t *testing.T) {
	_, err := DecodeRequest([]byte(`{"traveler":`))
	e := wantError(t, err, http.StatusBadRequest, CodeBadRequest)
	if e.Error() != CodeBadRequest+": "+e.Message {
		t.Errorf("Error() = %q", e.Error())
	}

	_, err = DecodeRequest([]byte(`{"traveler":tru}`))
	var syntaxErr *json.SyntaxError
	if !errors.As(err, &syntaxErr) {
		t.Errorf("the JSON syntax error is not reachable through %v", err)
	}

	e = &Error{Status: 400, Code: CodeBadRequest, Message: "m", Warnings: []string{"w"}}
	want := &Response{ErrorMessage: "m", Code: CodeBadRequest, Warnings: []string{"w"}}
	if got := e.Response(); !reflect.DeepEqual(got, want) {
		t.Errorf("Response() = %+v, want %+v", got, want)
	}
}

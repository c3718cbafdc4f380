package fsm

import (
	"github.com/covid-backend/covid-backend/command"
	"github.com/covid-backend/covid-backend/fsm/fsmpb"
)

// refuse is the result of a command that changed nothing.
func refuse(code command.Code, format string, args ...any) *fsmpb.Result {
	e := command.Refused(code, format, args...)
	return &fsmpb.Result{Refusal: &fsmpb.Refusal{Code: string(e.Code), Message: e.Message}}
}

func refusal(err *command.Error) *fsmpb.Result {
	return &fsmpb.Result{Refusal: &fsmpb.Refusal{Code: string(err.Code), Message: err.Message}}
}

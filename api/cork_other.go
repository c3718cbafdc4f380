//go:build !linux

package api

import "syscall"

// setCork does nothing where TCP_CORK is not known: answers are written
// as net/http writes them.
func setCork(syscall.RawConn, bool) {}

package api

import "syscall"

// setCork sets or clears TCP_CORK: while set, the kernel sends only full
// segments; clearing it sends what is left.
func setCork(raw syscall.RawConn, on bool) {
	v := 0
	if on {
		v = 1
	}
	raw.Control(func(fd uintptr) { syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_CORK, v) })
}

package account

import (
	"crypto/hmac"
	"crypto/sha256"
	"net/netip"
)

// ClientAddress is the part of an address that names one client: an IPv4
// address, or the /64 of an IPv6 address (what one subscriber gets). Rate
// limits and sign-in counts key on it.
func ClientAddress(ip string) string {
	addr, err := netip.ParseAddr(ip)
	if err != nil {
		return ip
	}
	if addr.Is4() || addr.Is4In6() {
		return addr.Unmap().String()
	}
	p, _ := addr.Prefix(64)
	return p.String()
}

// SignInClient is what the replicated state knows of the client of a
// sign-in: a keyed hash of its ClientAddress (16 bytes), so that a lock
// holds for that client on every node and the state holds no address.
func SignInClient(key []byte, ip string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("covid-backend sign-in client\x00"))
	m.Write([]byte(ClientAddress(ip)))
	return m.Sum(nil)[:16]
}

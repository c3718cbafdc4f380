package hsm

// Config names a PKCS#11 token: the module (the vendor's shared library,
// /usr/lib/softhsm/libsofthsm2.so for SoftHSM2), the token's label and a
// file holding the user PIN (mode 0600).
type Config struct {
	Module, Token, PinFile string
}

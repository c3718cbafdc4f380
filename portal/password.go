package portal

// maxHashing bounds the argon2id hashes a node computes at once: each
// takes 19 MiB (account.HashPassword), and sign-ins are open to strangers, so 60 at
// once took a node from 88 MiB to 1.1 GB. Four at once is 76 MiB; a
// sign-in past them is told to try again at once (429).
const maxHashing = 4

// hashSlot takes a slot to compute a hash, or reports that all are taken.
func (p *Portal) hashSlot() (release func(), ok bool) {
	select {
	case p.hashing <- struct{}{}:
		return func() { <-p.hashing }, true
	default:
		return nil, false
	}
}

// busyHashing is the answer when every hash slot is taken.
var busyHashing = msg("Too many sign-ins at this moment; please try again in a few seconds.")

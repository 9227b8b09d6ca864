// Package auth holds the building blocks of user authentication: password
// hashing with argon2id and throttling of failed logins.
package auth

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/argon2"
)

// Params are argon2id's cost parameters.
type Params struct {
	Memory  uint32 // KiB
	Time    uint32 // passes
	Threads uint8
}

// DefaultParams follow OWASP's minimum for argon2id (19 MiB, 2 passes, 1
// lane): a login costs tens of milliseconds of one core here, and a
// platform's logins are few.
var DefaultParams = Params{Memory: 19 * 1024, Time: 2, Threads: 1}

const (
	saltLen = 16
	keyLen  = 32
)

// ErrMismatch means the password does not match the hash.
var ErrMismatch = errors.New("auth: wrong password")

// ErrBadHash means a stored hash is not an argon2id PHC string this
// package can read.
var ErrBadHash = errors.New("auth: unreadable password hash")

var b64 = base64.RawStdEncoding

// HashPassword returns the PHC string of password with a random salt:
// $argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>.
func HashPassword(password string, p Params) (string, error) {
	if p.Memory < 8*uint32(p.Threads) || p.Time < 1 || p.Threads < 1 {
		return "", fmt.Errorf("auth: argon2id parameters out of range: %+v", p)
	}
	salt := make([]byte, saltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("auth: salt: %w", err)
	}
	key := argon2.IDKey([]byte(password), salt, p.Time, p.Memory, p.Threads, keyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.Memory, p.Time, p.Threads,
		b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// VerifyPassword checks password against a PHC string made by
// HashPassword (or any argon2id v=19 hash), in constant time. It returns
// the parameters the hash was made with, so that a caller can rehash
// after a login when they are below the current ones.
func VerifyPassword(hash, password string) (Params, error) {
	p, salt, key, err := parse(hash)
	if err != nil {
		return Params{}, err
	}
	got := argon2.IDKey([]byte(password), salt, p.Time, p.Memory, p.Threads, uint32(len(key)))
	if subtle.ConstantTimeCompare(got, key) != 1 {
		return p, ErrMismatch
	}
	return p, nil
}

// NeedsRehash reports whether a hash made with have is weaker than want.
func NeedsRehash(have, want Params) bool {
	return have.Memory < want.Memory || have.Time < want.Time || have.Threads < want.Threads
}

// maxMemory bounds the memory a stored hash may make VerifyPassword use
// (1 GiB): a hash edited to ask for more is refused, not computed.
const maxMemory = 1 << 20

func parse(hash string) (p Params, salt, key []byte, err error) {
	parts := strings.Split(hash, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return p, nil, nil, fmt.Errorf("%w: not an argon2id PHC string", ErrBadHash)
	}
	var v int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &v); err != nil || v != argon2.Version {
		return p, nil, nil, fmt.Errorf("%w: version %q", ErrBadHash, parts[2])
	}
	var threads uint32
	if n, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.Memory, &p.Time, &threads); err != nil || n != 3 {
		return p, nil, nil, fmt.Errorf("%w: parameters %q", ErrBadHash, parts[3])
	}
	if p.Memory > maxMemory || p.Time < 1 || p.Time > 100 || threads < 1 || threads > 255 || p.Memory < 8*threads {
		return p, nil, nil, fmt.Errorf("%w: parameters out of range %q", ErrBadHash, parts[3])
	}
	p.Threads = uint8(threads)
	if salt, err = b64.DecodeString(parts[4]); err != nil || len(salt) < 8 {
		return p, nil, nil, fmt.Errorf("%w: salt", ErrBadHash)
	}
	if key, err = b64.DecodeString(parts[5]); err != nil || len(key) < 16 || len(key) > 64 {
		return p, nil, nil, fmt.Errorf("%w: hash", ErrBadHash)
	}
	return p, salt, key, nil
}

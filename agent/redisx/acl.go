package redisx

import (
	"errors"

	"github.com/redis/go-redis/v9"
)

// ACLPasswords reads the passwords field (hex SHA-256 hashes) of an ACL
// GETUSER answer: in RESP2 a flat list of field names and values.
func ACLPasswords(cmd *redis.Cmd) ([]string, error) {
	v, err := cmd.Slice()
	if err != nil {
		return nil, err
	}
	for i := 0; i+1 < len(v); i += 2 {
		if k, _ := v[i].(string); k != "passwords" {
			continue
		}
		ps, _ := v[i+1].([]any)
		out := make([]string, 0, len(ps))
		for _, p := range ps {
			if s, ok := p.(string); ok {
				out = append(out, s)
			}
		}
		return out, nil
	}
	return nil, errors.New("no passwords field in the answer")
}

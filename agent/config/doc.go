// Package config owns every setting of init and run (each a flag with an
// environment variable and a default) and what follows from them: the
// validation whose errors name the flag, the value and the fix; this pod's
// identity and its peers' names; and the write fence's timing
// (min-replicas-to-write and a max-lag below --down-after).
package config

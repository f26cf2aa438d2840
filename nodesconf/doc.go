// Package nodesconf reads and writes Redis Cluster nodes.conf files and
// rewrites the addresses in them after pods came back with new IPs.
//
// It is pure: bytes in, bytes out. It does no file I/O, no logging and no
// DNS; name resolution is handed in as a Resolver, so the caller decides
// timeouts and the tests decide the answers.
//
// Parsing is lossless: Bytes of a parsed File is byte-identical to its input,
// and after a Rewrite only the address field of the nodes that moved differs.
// That matters because Redis keeps state in fields this package does not
// interpret (aux fields of newer versions, unknown vars), and an init step
// that reformatted the file could lose it.
//
// Formats understood, as Redis writes them:
//
//	5.x/6.x  <id> <ip>:<port>@<cport> <flags> <master> <ping> <pong> <epoch> <link> <slot>...
//	7.0      ... <ip>:<port>@<cport>[,<hostname>] ...
//	7.2+     ... <ip>:<port>@<cport>,[<hostname>][,<key>=<value>]... (shard-id, tls-port, nodename ...)
//	<4.0     ... <ip>:<port> ... (no bus port)
//	vars currentEpoch <n> lastVoteEpoch <n>
//
// IPv6 addresses are written without brackets (::1:6379@16379); the port is
// after the last colon, as in Redis's own loader.
package nodesconf

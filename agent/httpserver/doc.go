// Package httpserver owns the agent's one HTTP port: /healthz, /livez,
// /readyz, /status, /metrics and the /prestop hook. It asks the running mode
// (the Mode interface it declares) and only translates to HTTP; a preStop
// runs once however often kubelet calls the hook.
package httpserver

package agent

import (
	"context"
	"fmt"
	"time"

	"github.com/rs/zerolog"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/redis-ha-agent/redis-ha-agent/agent/config"
	"github.com/redis-ha-agent/redis-ha-agent/agent/kubeapi"
)

// maxEventNote is the API server's limit on an Event's note.
const maxEventNote = 1024

// failureEvent is the Warning Event that says why init or the sidecar
// stopped. It is written synchronously: the process exits right after, so
// the asynchronous recorder would drop it.
func failureEvent(cfg config.Config, reason, action string, err error, now time.Time) *eventsv1.Event {
	note := err.Error()
	if len(note) > maxEventNote {
		note = note[:maxEventNote-3] + "..."
	}
	return &eventsv1.Event{
		ObjectMeta: metav1.ObjectMeta{
			Name:      fmt.Sprintf("%s.%x", cfg.PodName, now.UnixNano()),
			Namespace: cfg.Namespace,
		},
		EventTime:           metav1.NewMicroTime(now),
		ReportingController: "redis-ha-agent",
		ReportingInstance:   "redis-ha-agent-" + cfg.PodName,
		Action:              action,
		Reason:              reason,
		Type:                corev1.EventTypeWarning,
		Note:                note,
		Regarding:           corev1.ObjectReference{Kind: "Pod", APIVersion: "v1", Namespace: cfg.Namespace, Name: cfg.PodName},
	}
}

// reportFailure publishes err as a Warning Event on this pod, best effort:
// without an API client (the agent-init component mounts no token) or
// without RBAC create on events, the log line is the only record.
func reportFailure(cfg config.Config, reason, action string, err error, log zerolog.Logger) {
	if err == nil || cfg.PodName == "" || cfg.Namespace == "" {
		return
	}
	rc, cerr := kubeapi.RESTConfig(cfg.Kubeconfig)
	if cerr != nil {
		log.Debug().Err(cerr).Msg("no API client; the failure is not published as an Event")
		return
	}
	rc.UserAgent = "redis-ha-agent/" + cfg.Version + "/failure"
	client, cerr := kubeapi.New(rc)
	if cerr != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ev := failureEvent(cfg, reason, action, err, time.Now())
	if _, cerr := client.EventsV1().Events(cfg.Namespace).Create(ctx, ev, metav1.CreateOptions{}); cerr != nil {
		log.Warn().Err(cerr).Str("reason", reason).Msg("could not publish the failure as an Event (needs RBAC create on events.k8s.io events)")
	}
}

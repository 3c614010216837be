package agent

import "context"

// Provisioner is implemented by agents and tool providers (tools.Provider)
// that set themselves up once, after the host has opened the workspace and
// before it answers the first request: build clients bound to the agent's
// service principal, load a prompt, warm a cache. Work that needs no
// workspace belongs in the constructor instead.
//
// The host calls Provision exactly once, from one goroutine, before any
// Predict, PredictStream or tool Prepare: the tool providers of a
// tools.Declarer first, in the order they were added, then the agent, so
// that what the agent depends on is ready before it. The host looks through
// wrappers such as FromStream's to find it.
//
// env is the part of a request's Env that exists at start-up: System and
// User are the very clients every request's Env will carry (nil when the
// host has no workspace), and Dev is set under serve --dev; Caller,
// RequestID and the tool fields are empty. Unlike a request's Env, its
// clients live until the host stops, so Provision may keep them. System may
// be used now; User carries no caller here and fails closed on every call,
// so keep it only to build per-caller clients that are called later with a
// request's ctx. Provision must not keep env itself or ctx, which ends when
// start-up does.
//
// A non-nil error aborts start-up: the host does not serve, reports the
// error naming the component, and closes every component (io.Closer)
// whether or not its Provision ran. So an error should say what is missing
// or misconfigured; a transient failure is retried by the orchestrator
// restarting the process, not by the host.
//
// Shutdown is io.Closer: after the last in-flight request has drained, the
// host calls Close exactly once on every component that implements it, in
// the reverse order of Provision (the agent, then its tool providers).
// Close must cope with a Provision that never ran or failed, and should
// return promptly: the process is on its way out. When the drain timed out
// a straggling call may still be running, so Close must leave the component
// safe to call, if no longer efficient. An error from Close is logged, not
// retried.
type Provisioner interface {
	Provision(ctx context.Context, env *Env) error
}

// Package kubernetes holds the Kubernetes manifests that run agentrt as many
// replicas sharing their state in PostgreSQL (Deployment, Service, HorizontalPodAutoscaler,
// PodDisruptionBudget, a projected service-account token for workload-identity
// federation). It has no code: its tests decode every manifest strictly into
// the Kubernetes API types and check that the pieces are wired to each other.
package kubernetes

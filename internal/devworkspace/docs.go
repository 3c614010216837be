package devworkspace

import (
	"fmt"
	"strings"
	"time"
)

// The dev documentation corpus: product docs for "Kestrel", a fictional
// line of developer infrastructure products invented for this project.
// Every product gets the same 25 topics, each rendered from a template with
// the product's own facts (ports, files, limits, nouns), so the 200 chunks
// are varied enough that retrieval has something real to rank, and fully
// deterministic.

// docsTable is the full name of the docs table and docsIndex its index.
const (
	docsTable    = "main.docs.product_docs"
	docsIndex    = "main.docs.product_docs_index"
	docsEndpoint = "dev-vs-endpoint"
)

// DocChunk is one row of main.docs.product_docs.
type DocChunk struct {
	ID        int64
	Title     string
	Body      string
	URL       string
	Product   string
	UpdatedAt string // RFC 3339, UTC
}

type kestrelProduct struct {
	slug, name, what, noun, nouns, cli, file, env string
	port, limit                                   int
	feature, metric, integr                       string
}

var kestrelProducts = []kestrelProduct{
	{"gateway", "Kestrel Gateway", "an API gateway that routes, authenticates and rate-limits HTTP traffic", "route", "routes", "kgw", "gateway.yaml", "KGW", 8443, 500, "canary releases by header", "p99 upstream latency", "Kubernetes ingress"},
	{"vault", "Kestrel Vault", "a secrets manager that stores, rotates and audits credentials", "secret", "secrets", "kvault", "vault.hcl", "KVAULT", 8200, 10000, "automatic database password rotation", "lease renewals per minute", "AWS KMS auto-unseal"},
	{"stream", "Kestrel Stream", "an event streaming platform with durable, partitioned topics", "topic", "topics", "kstream", "stream.properties", "KSTREAM", 9092, 2000, "exactly-once consumer groups", "consumer lag", "Apache Avro schema registry"},
	{"ledger", "Kestrel Ledger", "a usage-based billing engine that meters events into invoices", "invoice", "invoices", "kledger", "ledger.toml", "KLEDGER", 7070, 50000, "proration on mid-cycle plan changes", "unbilled usage", "Stripe payment collection"},
	{"lens", "Kestrel Lens", "an observability suite for metrics, logs and traces", "dashboard", "dashboards", "klens", "lens.yaml", "KLENS", 3100, 300, "trace-to-log correlation", "ingestion rate", "OpenTelemetry collectors"},
	{"sync", "Kestrel Sync", "a file synchronisation service for teams with offline support", "folder", "folders", "ksync", "sync.json", "KSYNC", 4433, 100000, "block-level delta uploads", "sync queue depth", "Microsoft SharePoint import"},
	{"forms", "Kestrel Forms", "a form builder with validation, workflows and e-signatures", "form", "forms", "kforms", "forms.config.js", "KFORMS", 5173, 250, "conditional logic between fields", "submission completion rate", "Salesforce lead export"},
	{"relay", "Kestrel Relay", "a notification service that delivers email, SMS and push messages", "channel", "channels", "krelay", "relay.yaml", "KRELAY", 2525, 40, "quiet hours per recipient time zone", "delivery success rate", "Twilio SMS sending"},
}

type docTopic struct{ slug, title, body string }

// Placeholders: {name} {what} {noun} {nouns} {cli} {file} {env} {port}
// {limit} {feature} {metric} {integr} {slug}.
var docTopics = []docTopic{
	{"overview", "What is {name}?", "{name} is {what}. Teams use it to manage {nouns} from a single control plane, with {feature} built in. It runs as a single binary or as a managed cloud service, and every operation is available from the web console, the {cli} command line tool and the REST API."},
	{"quickstart", "Quickstart: your first {noun}", "Install the {name} CLI, sign in with `{cli} login`, then create your first {noun} with `{cli} {noun} create demo`. The command prints the new {noun}'s ID. Open the web console to see it listed under {nouns}. The whole quickstart takes about five minutes and needs no credit card."},
	{"install-linux", "Installing {name} on Linux", "Download the release archive for your architecture, unpack it to /opt/{slug} and run `sudo /opt/{slug}/bin/{cli} service install`. The service listens on port {port} by default. Supported distributions are Debian 12, Ubuntu 22.04 and later, and RHEL 9. The installer creates a system user named {slug}."},
	{"install-docker", "Running {name} in Docker", "The official image is kestrel/{slug}. Start it with `docker run -p {port}:{port} -v {slug}-data:/var/lib/{slug} kestrel/{slug}:latest`. Mount your {file} at /etc/{slug}/{file} to override defaults. The container runs as a non-root user and exposes a health check on /healthz."},
	{"config-file", "The {file} configuration file", "{name} reads its settings from {file}. The file is looked up in the working directory, then in /etc/{slug}. Every setting can also be given as an environment variable prefixed with {env}_, for example {env}_PORT={port}. Environment variables win over the file, and flags win over both."},
	{"env-vars", "Environment variables reference", "Common environment variables for {name}: {env}_PORT (listen port, default {port}), {env}_LOG_LEVEL (debug, info, warn, error), {env}_DATA_DIR (state directory) and {env}_TOKEN (API token for the {cli} CLI). Secrets should come from a secret manager rather than plain environment files."},
	{"auth-tokens", "API tokens and authentication", "Every API call to {name} needs a bearer token. Create a personal token in the console under Settings → Tokens, or a service token with `{cli} token create --service`. Tokens are shown once; store them safely. Revoke a leaked token immediately: revocation takes effect within ten seconds across all regions."},
	{"sso", "Single sign-on with SAML and OIDC", "{name} supports single sign-on through SAML 2.0 and OpenID Connect. Configure the identity provider under Settings → Security. Users are provisioned on first login, and SCIM keeps groups in sync. Enforcing SSO disables password logins for everyone except the break-glass owner account."},
	{"roles", "Roles and permissions", "In {name}, access to {nouns} is controlled by roles: Viewer can read, Editor can create and change {nouns}, and Admin can also manage members and billing. Roles can be granted per project. A custom role lists individual permissions such as {noun}.read and {noun}.write."},
	{"limits", "Quotas and limits", "A {name} project can hold up to {limit} {nouns}. API requests are limited to 100 per second per token, with bursts up to 200. Hitting the limit returns HTTP 429 with a Retry-After header; clients should back off exponentially. Contact support to raise the {noun} quota for enterprise plans."},
	{"pricing", "Pricing and plans", "{name} has three plans. Free includes one project and basic {nouns}. Team adds {feature}, audit logs and email support. Enterprise adds single sign-on enforcement, a 99.95% uptime SLA and a dedicated support engineer. Plans are billed monthly or yearly; yearly billing saves 15%."},
	{"billing", "Invoices and payment methods", "Invoices for {name} are issued on the first day of each month and list usage per project. Pay by card or, on Enterprise, by bank transfer with 30-day terms. Download past invoices as PDF from Settings → Billing. A failed payment is retried three times over a week before the account is restricted."},
	{"backup", "Backing up {name}", "Back up the data directory and {file} regularly. Run `{cli} backup create --out backup.tar.gz` for a consistent snapshot without stopping the service. Backups are compressed and include every {noun} with its history. Keep at least one copy off site and test restores every quarter."},
	{"restore", "Restoring from a backup", "To restore {name}, stop the service, run `{cli} backup restore backup.tar.gz` and start it again. The restore checks the archive's checksum before writing anything. Restoring onto a newer version is supported; restoring onto an older version is refused with an error naming both versions."},
	{"upgrade", "Upgrading to a new version", "Upgrades of {name} are in place: install the new release and restart. Database migrations run automatically on start and are backward compatible for one minor version, so you can roll back once. Read the release notes first; breaking changes are only made in major versions and are announced 90 days ahead."},
	{"monitoring", "Monitoring and metrics", "{name} exposes Prometheus metrics on /metrics at port {port}. The most important signal is {metric}; alert when it stays above its baseline for ten minutes. Dashboards for Grafana are published in the docs repository, and traces can be exported through {integr} or any OpenTelemetry collector."},
	{"logging", "Logs and log levels", "{name} writes its logs as JSON lines to standard output. Set {env}_LOG_LEVEL=debug to troubleshoot, but do not leave debug logging on in production: it is verbose and may include {noun} names. Every log line carries a request_id that also appears in API error responses, which makes support tickets faster."},
	{"troubleshoot-start", "Troubleshooting: the service does not start", "If {name} exits right after starting, check the last log lines. The most common causes are port {port} already in use, a syntax error in {file}, or missing permissions on the data directory. Run `{cli} doctor` to check all three; it prints the fix for each problem it finds."},
	{"troubleshoot-auth", "Troubleshooting: 401 and 403 errors", "When {name} answers 401 Unauthorized, the token is missing, expired or revoked: create a new one. A 403 Forbidden means the token is valid but its role lacks the permission, for example {noun}.write. The error message names the missing permission. Service tokens are limited to the projects they were created in."},
	{"troubleshoot-slow", "Troubleshooting: slow responses", "When {name} responds slowly, look at {metric} first. High values usually mean the host is short of memory or disk I/O. Enable request tracing with {env}_TRACE=1 to see where time goes. Very large {nouns} slow down listing; paginate with the page_token parameter instead of fetching everything."},
	{"api-overview", "REST API overview", "The REST API of {name} is served under /api/v1 on port {port}. Requests and responses are JSON, and errors carry an error_code and a human-readable message. List endpoints are paginated with page_token. An OpenAPI document is available at /api/v1/openapi.json for generating clients."},
	{"api-create", "API: creating and updating {nouns}", "In {name}, create a {noun} with POST /api/v1/{nouns} and a JSON body with its name and settings. Update it with PATCH /api/v1/{nouns}/:id; only the fields you send change. Requests are idempotent when you send an Idempotency-Key header, so a retried request never creates a duplicate {noun}."},
	{"webhooks", "Webhooks and events", "{name} can send webhooks when a {noun} is created, changed or deleted. Register an HTTPS URL under Settings → Webhooks. Each delivery is signed with HMAC-SHA256 in the X-Kestrel-Signature header; verify it before trusting the payload. Failed deliveries are retried with backoff for 24 hours."},
	{"integrations", "Integrations", "{name} integrates with {integr} out of the box. Other integrations include Slack notifications, GitHub Actions for automated {noun} changes, and Terraform for managing {nouns} as code. The Terraform provider is kestrel/{slug} and supports import of existing {nouns}."},
	{"security", "Security and compliance", "{name} encrypts data at rest with AES-256 and in transit with TLS 1.3. The service is SOC 2 Type II certified and supports GDPR data processing agreements. Audit logs record every change to {nouns} with the actor, time and source IP, and can be streamed to your SIEM."},
}

// ProductDocs returns the dev documentation corpus (200 chunks), in id
// order. The result is freshly allocated and deterministic.
func ProductDocs() []DocChunk {
	base := time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)
	out := make([]DocChunk, 0, len(kestrelProducts)*len(docTopics))
	for pi, p := range kestrelProducts {
		r := strings.NewReplacer(
			"{name}", p.name, "{what}", p.what, "{noun}", p.noun, "{nouns}", p.nouns,
			"{cli}", p.cli, "{file}", p.file, "{env}", p.env, "{port}", fmt.Sprint(p.port),
			"{limit}", fmt.Sprint(p.limit), "{feature}", p.feature, "{metric}", p.metric,
			"{integr}", p.integr, "{slug}", p.slug,
		)
		for ti, t := range docTopics {
			id := int64(pi*len(docTopics) + ti + 1)
			out = append(out, DocChunk{
				ID:        id,
				Title:     r.Replace(t.title),
				Body:      r.Replace(t.body),
				URL:       fmt.Sprintf("https://docs.kestrel.example/%s/%s", p.slug, t.slug),
				Product:   p.name,
				UpdatedAt: base.Add(time.Duration((id*7919)%2000) * time.Hour).Format(time.RFC3339),
			})
		}
	}
	return out
}

// docsColumns is the schema of main.docs.product_docs, in table order.
var docsColumns = []vsColumn{
	{"id", "bigint"}, {"title", "string"}, {"body", "string"},
	{"url", "string"}, {"product", "string"}, {"updated_at", "string"},
}

// docRows turns chunks into index rows in docsColumns order.
func docRows(docs []DocChunk) [][]any {
	rows := make([][]any, len(docs))
	for i, d := range docs {
		rows[i] = []any{d.ID, d.Title, d.Body, d.URL, d.Product, d.UpdatedAt}
	}
	return rows
}

// syntheticDocRows makes n distinct rows by cycling the corpus and
// appending a deterministic tail, for scale tests and benchmarks.
func syntheticDocRows(n int) [][]any {
	docs := ProductDocs()
	words := strings.Fields("alpha beta gamma delta region cluster shard tenant replica window cache batch queue retry policy budget")
	rows := make([][]any, n)
	for i := range n {
		d := docs[i%len(docs)]
		tail := fmt.Sprintf(" Revision %d notes: %s %s %s.", i/len(docs), words[i%len(words)], words[(i/7)%len(words)], words[(i/31)%len(words)])
		rows[i] = []any{int64(i + 1), d.Title, d.Body + tail, d.URL, d.Product, d.UpdatedAt}
	}
	return rows
}

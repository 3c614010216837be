// Package credentials builds the two workspace clients the host hands to an
// agent: the user client, one shared *databricks.WorkspaceClient that calls as
// whoever sent the current request (its credential travels in the request
// context, so handing it out costs nothing), and the system client, which
// calls as the agent's service principal with a token refreshed in the
// background.
//
// Both fail closed. The user client refuses to run without a caller
// credential in its context (it never falls back to the service principal)
// and refuses, before anything leaves the process, any call whose route is
// outside the agent's declared API scopes. Tokens are never logged or put in
// errors; [Fingerprint] gives a short, stable stand-in for logs.
//
// System credential sources, in order of precedence (SystemOptions; the
// variables are the ones runtime/cli reads them from):
//
//  1. OAuth M2M: ClientID and ClientSecret (DATABRICKS_CLIENT_ID,
//     DATABRICKS_CLIENT_SECRET).
//  2. A platform-injected token file that rotates on disk (Model Serving's
//     {"OAUTH_TOKEN":[{"oauthTokenValue":"…"}]} JSON or a plain token):
//     TokenFile (AGENTRT_TOKEN_FILE), else the Model Serving path when it
//     exists. It is re-read when its mtime changes.
//  3. Workload-identity federation: OIDCTokenFile
//     (DATABRICKS_OIDC_TOKEN_FILEPATH, with an optional ClientID), exchanged
//     with the SDK's file-oidc token source.
//  4. A personal access token: Token (DATABRICKS_TOKEN).
//
// The package reads no environment variables: its options are filled by the
// caller.
package credentials

//! Settings: a TOML file (the embedded `config/hub.toml` by default), then environment
//! overrides, then [`Settings::validate`], whose messages name the key and say how to fix it.
//!
//! Every key can be set from the environment as `MCP_HUB_<KEY>`, with `__` between nested
//! keys: `MCP_HUB_LISTEN`, `MCP_HUB_STATE_DIR`, `MCP_HUB_ADMIN_TOKEN`,
//! `MCP_HUB_HTTP__MAX_BODY_BYTES`, `MCP_HUB_TIMEOUTS__HUB_MS`. `REDIS_URL` is accepted too.

use mcp_hub_actors::registry::ServerDef;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// The embedded default configuration (`config/hub.toml`).
pub const EMBEDDED_DEFAULT: &str = include_str!("../config/hub.toml");

/// All settings of one hub process.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// Address to listen on, `host:port` (port 0 picks a free one).
    pub listen: String,
    /// Where the embedded registry (`registry.json`) lives.
    pub state_dir: PathBuf,
    /// Bearer token for `/api`. Without one, only loopback callers may use the admin API.
    pub admin_token: Option<String>,
    /// Redis URL: the registry is shared by every instance through it (unset: the embedded
    /// file store).
    pub redis_url: Option<String>,
    /// Prefix of every Redis key (several hubs or tests can share one Redis).
    pub redis_prefix: String,
    /// Seconds between full reconciles with Redis (pub/sub events apply at once).
    pub reconcile_secs: u64,
    /// This instance's node id (default: host name and pid).
    pub node_id: Option<String>,
    /// With Redis: how instances find and call each other (server placement).
    pub cluster: ClusterSettings,
    /// PEM file of extra CA certificates trusted for https upstreams (a private CA or a
    /// self-signed upstream), besides Mozilla's public roots.
    pub tls_ca_file: Option<PathBuf>,
    /// Logging.
    pub log: LogSettings,
    /// HTTP front door.
    pub http: HttpSettings,
    /// Client sessions.
    pub sessions: SessionSettings,
    /// Nested timeouts; each inner one must be shorter than the one around it.
    pub timeouts: TimeoutSettings,
    /// Async tasks (MCP 2025-11-25 task-augmented tools/call).
    pub tasks: TaskSettings,
    /// How upstream workers are restarted and health-checked.
    pub supervision: SupervisionSettings,
    /// Who may call the MCP endpoints.
    pub auth: AuthSettings,
    /// What the hub may reach on an operator's behalf (the SSRF policy for upstream URLs).
    pub security: SecuritySettings,
    /// Rate limits and load caps (0 = unlimited).
    pub limits: LimitSettings,
    /// MCP 2026-07-28 (stateless) clients: requestState signing, cache hints.
    pub modern: crate::config_modern::ModernSettings,
    /// Upstream servers applied at every start (they win over stored copies with the same id).
    pub servers: Vec<ServerDef>,
    /// Things worth telling the operator that did not stop the load (e.g. ignored
    /// environment variables). Not a config key.
    #[serde(skip)]
    pub warnings: Vec<String>,
}

/// Logging settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogSettings {
    /// `json` (one object per line) or `pretty`.
    pub format: String,
    /// A tracing filter, e.g. `info` or `info,mcp_hub_actors=debug`. `RUST_LOG` wins.
    pub level: String,
    /// Share of high-volume events logged (`tool.call.accepted`, `tool.call.proxy.start`,
    /// `tool.call.proxy.done`, `upstream.session.reused`), 0.0..=1.0: 0.1 keeps one in ten.
    /// Warnings and errors are never sampled out.
    pub sample_rate: f64,
}

/// HTTP settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpSettings {
    /// Largest request body accepted (413 past it).
    pub max_body_bytes: usize,
    /// Host header values allowed besides localhost, 127.0.0.1 and [::1] (any port). `*`
    /// allows every host (behind a proxy that checks it).
    pub allowed_hosts: Vec<String>,
    /// Origin values allowed besides loopback origins. `*` allows every origin.
    pub allowed_origins: Vec<String>,
    /// HTTP worker threads (0: one per core).
    pub workers: usize,
    /// Seconds to finish in-flight requests on shutdown.
    pub shutdown_timeout_secs: u64,
}

/// Session settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SessionSettings {
    /// A session with no open stream and no call in flight ends after this many seconds.
    pub idle_ttl_secs: u64,
    /// Live sessions at most; past it `initialize` gets "busy".
    pub max_sessions: usize,
    /// Items per page of merged lists.
    pub page_size: usize,
    /// Messages buffered per SSE stream.
    pub stream_buffer: usize,
    /// Seconds between SSE keep-alive comments.
    pub keep_alive_secs: u64,
    /// Base SSE `retry:` hint in milliseconds (a random share up to the same again is added).
    pub retry_ms: u64,
    /// Events each session keeps for resumption (Last-Event-ID).
    pub log_max_events: usize,
    /// Bytes each session keeps for resumption.
    pub log_max_bytes: usize,
    /// Seconds an undelivered event (or result) is kept for resumption.
    pub log_max_age_secs: u64,
    /// Live sessions one user may hold.
    pub max_sessions_per_user: usize,
    /// With Redis: mirror sessions (record, request-stream events, unfinished calls) so
    /// every instance serves every session and a resume survives an instance's death.
    pub shared: bool,
    /// An upstream session of a `per_user` or `per_client` context with no call for this
    /// many seconds is closed (DELETE); the next call opens a new one.
    pub upstream_idle_ttl_secs: u64,
}

/// Rate limits (token buckets; 0 = unlimited) and caps on load.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitSettings {
    /// tools/call per second through this hub, all users together.
    pub global_per_second: f64,
    /// Burst of the global bucket (0: one second's worth).
    pub global_burst: f64,
    /// tools/call per minute per user.
    pub user_per_minute: f64,
    /// Burst of each user's bucket (0: one minute's worth).
    pub user_burst: f64,
    /// tools/call per second per server (a server's `rate_limit_per_second` overrides it).
    pub server_per_second: f64,
    /// Burst of each server's bucket (0: one second's worth).
    pub server_burst: f64,
    /// Calls in flight across the whole hub; past it calls get "Server busy" at once.
    pub max_in_flight: usize,
    /// Largest `arguments` of a `tools/call`, in bytes of JSON as received; past it the call
    /// gets -32602 with data {limit_bytes, size_bytes, hint} and never reaches the upstream.
    pub max_arguments_bytes: usize,
    /// Upstream session contexts (users or client sessions, by the server's `session_mode`)
    /// one Streamable HTTP server may hold at once; past it new contexts get "limit reached".
    pub upstream_sessions_per_server: usize,
}

impl Default for LimitSettings {
    fn default() -> Self {
        Self {
            global_per_second: 0.0,
            global_burst: 0.0,
            user_per_minute: 0.0,
            user_burst: 0.0,
            server_per_second: 0.0,
            server_burst: 0.0,
            max_in_flight: 4096 * std::thread::available_parallelism().map_or(1, |n| n.get()),
            max_arguments_bytes: 256 * 1024,
            upstream_sessions_per_server: 1000,
        }
    }
}

impl LimitSettings {
    /// The token-bucket limits the actors use.
    pub fn rate_limits(&self) -> mcp_hub_actors::ratelimit::RateLimits {
        use mcp_hub_actors::ratelimit::Limit;
        let limit = |rate: f64, burst: f64, window: f64| {
            (rate > 0.0).then(|| Limit {
                rate: rate / window,
                burst: if burst >= 1.0 { burst } else { rate.max(1.0) },
            })
        };
        mcp_hub_actors::ratelimit::RateLimits {
            global: limit(self.global_per_second, self.global_burst, 1.0),
            user: limit(self.user_per_minute, self.user_burst, 60.0),
            server: limit(self.server_per_second, self.server_burst, 1.0),
        }
    }
}

/// How instances sharing Redis reach each other, for servers with a `placement`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterSettings {
    /// This node's labels; a server whose `placement.labels` names one runs here.
    pub labels: Vec<String>,
    /// The base URL other instances call this one at (`http://host:port`). Default:
    /// `http://{listen}` when `listen` names a specific address (not 0.0.0.0 or [::]).
    pub advertise_url: Option<String>,
    /// Shared secret instances present to each other (`Authorization: Bearer`) when they
    /// forward calls to a placed server; calls with it act as the user `cluster`. Set the same
    /// value on every instance (at least 16 characters).
    pub token: Option<String>,
}

/// Caller identity settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthSettings {
    /// Anonymous callers: "loopback" (from this machine only), "any", or "none".
    pub anonymous: String,
    /// A header carrying the user id, set by a fronting proxy you trust (off by default).
    pub trusted_user_header: Option<String>,
    /// API keys: `Authorization: Bearer <key>` maps to `user`. Only the SHA-256 is stored
    /// (`mcp-hub hash-key <key>` prints it).
    pub api_keys: Vec<ApiKey>,
}

/// Security settings beyond identity.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SecuritySettings {
    /// Which addresses registered upstream URLs may point at.
    pub upstreams: UpstreamSecuritySettings,
}

/// The SSRF policy for upstream URLs (`url`, `base_url`, `openapi`), checked at registration
/// and on every connection (each address a host name resolves to).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UpstreamSecuritySettings {
    /// Allow private ranges: 10/8, 172.16/12, 192.168/16, 100.64/10, fc00::/7.
    pub allow_private: bool,
    /// Allow link-local 169.254/16 and fe80::/10 (where cloud metadata services live).
    pub allow_link_local: bool,
    /// Allow loopback (127/8, ::1): on by default for local upstreams.
    pub allow_loopback: bool,
    /// Host names, IP addresses or CIDRs allowed whatever their class, e.g.
    /// `["10.0.3.0/24", "mcp.internal"]`.
    pub allow_hosts: Vec<String>,
}

impl Default for UpstreamSecuritySettings {
    fn default() -> Self {
        Self {
            allow_private: false,
            allow_link_local: false,
            allow_loopback: true,
            allow_hosts: Vec::new(),
        }
    }
}

impl UpstreamSecuritySettings {
    /// The policy the actors apply; a bad `allow_hosts` entry names its index.
    pub fn policy(&self) -> Result<mcp_hub_actors::server::ssrf::UpstreamPolicy, ConfigError> {
        mcp_hub_actors::server::ssrf::UpstreamPolicy::new(
            self.allow_private,
            self.allow_link_local,
            self.allow_loopback,
            &self.allow_hosts,
        )
        .map_err(|(i, e)| {
            invalid(
                &format!("security.upstreams.allow_hosts[{i}]"),
                format!("{e} (MCP_HUB_SECURITY__UPSTREAMS__ALLOW_HOSTS, comma-separated)"),
            )
        })
    }
}

/// One API key.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKey {
    /// The user id calls with this key act as.
    pub user: String,
    /// Hex SHA-256 of the key.
    pub key_sha256: String,
}

impl Default for AuthSettings {
    fn default() -> Self {
        Self {
            anonymous: "loopback".into(),
            trusted_user_header: None,
            api_keys: Vec::new(),
        }
    }
}

/// Supervision settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SupervisionSettings {
    /// First restart delay (ms); doubles per failure in a row.
    pub backoff_base_ms: u64,
    /// Longest restart delay (ms).
    pub backoff_max_ms: u64,
    /// Seconds a worker must stay ready to reset the failure count.
    pub stable_after_secs: u64,
    /// Failures in a row after which a server is marked failed until an operator restarts it.
    pub crash_loop_limit: u32,
    /// Seconds between health checks (MCP ping); 0 disables them.
    pub health_interval_secs: u64,
    /// Milliseconds a health check may take.
    pub health_timeout_ms: u64,
    /// Failed health checks in a row that restart the worker.
    pub health_failures: u32,
    /// Milliseconds a stopping stdio child gets (stdin closed, SIGTERM, then SIGKILL).
    pub stop_grace_ms: u64,
    /// Failed calls in a row that open a server's circuit breaker (0 disables it).
    pub breaker_failures: u32,
    /// Seconds an open breaker fails calls fast before one probe call goes through.
    pub breaker_open_secs: u64,
    /// Workers starting (spawn + handshake) at once, hub-wide: paces a restart with many
    /// servers.
    pub max_concurrent_starts: usize,
    /// Running stdio workers allowed on this node; servers past it are `over_capacity` until
    /// one stops. 0: no cap. Also `MCP_WORKER_MAX`.
    pub worker_max: usize,
    /// Seconds without calls after which a stdio worker is stopped (status `idle`) until the
    /// next call starts it again. 0: never. Also `MCP_WORKER_IDLE_TTL`.
    pub worker_idle_ttl_secs: u64,
    /// Lets tests inject faults into ServerActors (panic, stop). Never turn on in production.
    pub test_hooks: bool,
}

impl Default for SupervisionSettings {
    fn default() -> Self {
        Self {
            backoff_base_ms: 200,
            backoff_max_ms: 30_000,
            stable_after_secs: 30,
            crash_loop_limit: 5,
            health_interval_secs: 30,
            health_timeout_ms: 5000,
            health_failures: 3,
            stop_grace_ms: 2000,
            breaker_failures: 5,
            breaker_open_secs: 10,
            max_concurrent_starts: 8,
            worker_max: 0,
            worker_idle_ttl_secs: 0,
            test_hooks: false,
        }
    }
}

impl SupervisionSettings {
    /// The policy the actors use.
    pub fn policy(&self) -> mcp_hub_actors::server::SupervisionConfig {
        use std::time::Duration;
        mcp_hub_actors::server::SupervisionConfig {
            backoff_base: Duration::from_millis(self.backoff_base_ms),
            backoff_max: Duration::from_millis(self.backoff_max_ms),
            stable_after: Duration::from_secs(self.stable_after_secs),
            crash_loop_limit: self.crash_loop_limit,
            health_interval: Duration::from_secs(self.health_interval_secs),
            health_timeout: Duration::from_millis(self.health_timeout_ms),
            health_failures: self.health_failures,
            stop_grace: Duration::from_millis(self.stop_grace_ms),
            breaker_failures: self.breaker_failures,
            breaker_open: Duration::from_secs(self.breaker_open_secs),
            worker_max: self.worker_max,
            worker_idle_ttl: Duration::from_secs(self.worker_idle_ttl_secs),
            test_hooks: self.test_hooks,
        }
    }
}

/// Task settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TaskSettings {
    /// Seconds a finished task's outcome is kept when the client asks for no TTL.
    pub default_ttl_secs: u64,
    /// Longest TTL granted, in seconds.
    pub max_ttl_secs: u64,
    /// Working tasks one user may have at once.
    pub max_working_per_user: usize,
    /// Suggested polling interval for tasks/get, in ms.
    pub poll_interval_ms: u64,
}

impl Default for TaskSettings {
    fn default() -> Self {
        Self {
            default_ttl_secs: 300,
            max_ttl_secs: 3600,
            max_working_per_user: 100,
            poll_interval_ms: 1000,
        }
    }
}

/// Nested timeouts (milliseconds): client > hub > server > external API.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TimeoutSettings {
    /// What clients are told to use (documented; not enforced by the hub).
    pub client_ms: u64,
    /// Hub layer: around each forwarded call.
    pub hub_ms: u64,
    /// Server layer default (a server's `timeout_ms` overrides it).
    pub server_ms: u64,
    /// External API layer (REST tools).
    pub external_ms: u64,
    /// Each progress notification from the upstream restarts a call's server and hub
    /// deadlines (up to `hard_max_ms` from the start).
    pub progress_extends: bool,
    /// The longest a call may run however much progress it reports (≥ `hub_ms`).
    pub hard_max_ms: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            state_dir: PathBuf::from("state"),
            admin_token: None,
            redis_url: None,
            redis_prefix: "mcp:".into(),
            reconcile_secs: 30,
            node_id: None,
            cluster: ClusterSettings::default(),
            tls_ca_file: None,
            log: LogSettings::default(),
            http: HttpSettings::default(),
            sessions: SessionSettings::default(),
            timeouts: TimeoutSettings::default(),
            tasks: TaskSettings::default(),
            supervision: SupervisionSettings::default(),
            auth: AuthSettings::default(),
            security: SecuritySettings::default(),
            limits: LimitSettings::default(),
            modern: Default::default(),
            servers: Vec::new(),
            warnings: Vec::new(),
        }
    }
}

impl Default for LogSettings {
    fn default() -> Self {
        Self {
            format: "json".into(),
            level: "info".into(),
            sample_rate: 1.0,
        }
    }
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            max_body_bytes: 1024 * 1024,
            allowed_hosts: Vec::new(),
            allowed_origins: Vec::new(),
            workers: 0,
            shutdown_timeout_secs: 10,
        }
    }
}

impl Default for SessionSettings {
    fn default() -> Self {
        Self {
            idle_ttl_secs: 1800,
            max_sessions: 10_000,
            page_size: 1000,
            stream_buffer: 256,
            keep_alive_secs: 15,
            retry_ms: 1000,
            log_max_events: 2048,
            log_max_bytes: 8 * 1024 * 1024,
            log_max_age_secs: 600,
            max_sessions_per_user: 1000,
            shared: true,
            upstream_idle_ttl_secs: 600,
        }
    }
}

impl Default for TimeoutSettings {
    fn default() -> Self {
        Self {
            client_ms: 30_000,
            hub_ms: 25_000,
            server_ms: 20_000,
            external_ms: 10_000,
            progress_extends: true,
            hard_max_ms: 120_000,
        }
    }
}

/// A configuration problem, worded for the operator.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML or has a bad key.
    #[error("{origin}: {message}")]
    Parse {
        /// The file or "environment".
        origin: String,
        /// What and where.
        message: String,
    },
    /// A value is out of range or inconsistent.
    #[error("invalid config: `{key}`: {message}")]
    Invalid {
        /// The key at fault.
        key: String,
        /// What is wrong and how to fix it.
        message: String,
    },
}

fn invalid(key: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.to_string(),
        message: message.into(),
    }
}

impl Settings {
    /// Loads `path` (or the embedded default), applies the environment, validates.
    pub fn load(path: Option<&Path>) -> Result<Settings, ConfigError> {
        let (origin, text) = match path {
            Some(p) => (
                p.display().to_string(),
                std::fs::read_to_string(p).map_err(|source| ConfigError::Read {
                    path: p.to_path_buf(),
                    source,
                })?,
            ),
            None => (
                "embedded config/hub.toml".to_string(),
                EMBEDDED_DEFAULT.to_string(),
            ),
        };
        Self::from_toml(&origin, &text, std::env::vars())
    }

    /// Parses TOML text, applies `env` overrides, validates.
    pub fn from_toml(
        origin: &str,
        text: &str,
        env: impl Iterator<Item = (String, String)>,
    ) -> Result<Settings, ConfigError> {
        let mut value: toml::Value = toml::from_str(text).map_err(|e| ConfigError::Parse {
            origin: origin.to_string(),
            message: e.to_string(),
        })?;
        let defaults =
            toml::Value::try_from(Settings::default()).map_err(|e| ConfigError::Parse {
                origin: "defaults".into(),
                message: e.to_string(),
            })?;
        let mut warnings = Vec::new();
        for (name, raw) in env {
            let path: Vec<String> = if name == "REDIS_URL" {
                vec!["redis_url".into()]
            } else if let Some(key) = WORKER_ALIASES
                .iter()
                .find_map(|(alias, key)| (name == *alias).then_some(*key))
            {
                vec!["supervision".into(), key.into()]
            } else if let Some(rest) = name.strip_prefix("MCP_HUB_") {
                rest.split("__").map(str::to_ascii_lowercase).collect()
            } else {
                continue;
            };
            // Only keys that exist (optional top-level keys have no default to look at).
            let in_known_section = path.len() == 2
                && path[0] != "servers"
                && defaults
                    .get(path[0].as_str())
                    .is_some_and(toml::Value::is_table);
            let known = matches!(path.as_slice(), [k] if k == "admin_token" || k == "redis_url" || k == "node_id")
                || in_known_section
                || (path.first().is_some_and(|k| k != "servers")
                    && path
                        .iter()
                        .try_fold(&defaults, |v, k| v.get(k.as_str()))
                        .is_some());
            if !known {
                if !NOT_CONFIG_VARS.iter().any(|p| name.starts_with(p)) {
                    warnings.push(format!(
                        "ignored environment variable {name}: no config key {}",
                        path.join(".")
                    ));
                }
                continue;
            }
            set_path(&mut value, &defaults, &path, &raw);
        }
        let settings: Settings = serde_path_to_error::deserialize(value).map_err(|e| {
            let key = e.path().to_string();
            ConfigError::Parse {
                origin: origin.to_string(),
                message: format!(
                    "key `{key}`: {} (environment: MCP_HUB_{})",
                    e.inner(),
                    key.replace('.', "__").to_ascii_uppercase()
                ),
            }
        })?;
        settings.validate()?;
        let mut settings = settings;
        settings.warnings = warnings;
        Ok(settings)
    }

    /// Checks ranges and consistency.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.listen_addr()?;
        if self.reconcile_secs == 0 {
            return Err(invalid("reconcile_secs", "must be at least 1 second"));
        }
        if self.modern.input_gather_ms > 5_000 {
            return Err(invalid(
                "modern.input_gather_ms",
                "must be at most 5000: every bridged input round waits this long; 50 is plenty for requests an upstream sends together (MCP_HUB_MODERN__INPUT_GATHER_MS)",
            ));
        }
        let redis_ok = |u: &str| {
            u.is_empty()
                || ["redis://", "rediss://", "unix://"]
                    .iter()
                    .any(|p| u.starts_with(p))
        };
        if !self.redis_url.as_deref().is_none_or(redis_ok) {
            return Err(invalid(
                "redis_url",
                "must start with redis://, rediss:// or unix:// (REDIS_URL)",
            ));
        }
        if let Some(url) = &self.cluster.advertise_url {
            if !(url.starts_with("http://") || url.starts_with("https://"))
                || url.parse::<actix_web::http::Uri>().is_err()
            {
                return Err(invalid(
                    "cluster.advertise_url",
                    format!("{url:?} is not an http:// or https:// URL; give the address other instances reach this one at, e.g. \"http://10.0.0.5:8080\" (MCP_HUB_CLUSTER__ADVERTISE_URL)"),
                ));
            }
        }
        if self.cluster.token.as_ref().is_some_and(|t| t.len() < 16) {
            return Err(invalid(
                "cluster.token",
                "must be at least 16 characters; use the same random value on every instance (MCP_HUB_CLUSTER__TOKEN)",
            ));
        }
        if self.cluster.labels.iter().any(|l| l.trim().is_empty()) {
            return Err(invalid(
                "cluster.labels",
                "labels must not be empty strings",
            ));
        }
        if let Some(ca) = &self.tls_ca_file {
            if !ca.is_file() {
                return Err(invalid(
                    "tls_ca_file",
                    format!(
                        "{} is not a readable file; give a PEM file of CA certificates (MCP_HUB_TLS_CA_FILE)",
                        ca.display()
                    ),
                ));
            }
        }
        if self.state_dir.as_os_str().is_empty() {
            return Err(invalid(
                "state_dir",
                "must name a directory (MCP_HUB_STATE_DIR)",
            ));
        }
        if !(0.0..=1.0).contains(&self.log.sample_rate) {
            return Err(invalid(
                "log.sample_rate",
                "must be between 0.0 (drop every sampled event) and 1.0 (keep all)",
            ));
        }
        if !matches!(self.log.format.as_str(), "json" | "pretty") {
            return Err(invalid(
                "log.format",
                format!(
                    "{:?} is not a log format; use \"json\" or \"pretty\"",
                    self.log.format
                ),
            ));
        }
        if self.http.max_body_bytes < 1024 {
            return Err(invalid(
                "http.max_body_bytes",
                "must be at least 1024 bytes",
            ));
        }
        if self.sessions.max_sessions == 0
            || self.sessions.page_size == 0
            || self.sessions.stream_buffer == 0
        {
            return Err(invalid(
                "sessions",
                "max_sessions, page_size and stream_buffer must be at least 1",
            ));
        }
        if self.sessions.upstream_idle_ttl_secs == 0 {
            return Err(invalid(
                "sessions.upstream_idle_ttl_secs",
                "must be at least 1 second",
            ));
        }
        if self.limits.max_arguments_bytes < 2 {
            return Err(invalid(
                "limits.max_arguments_bytes",
                "must be at least 2 bytes (the empty object `{}`)",
            ));
        }
        if self.limits.upstream_sessions_per_server == 0 {
            return Err(invalid(
                "limits.upstream_sessions_per_server",
                "must be at least 1",
            ));
        }
        if self.sessions.idle_ttl_secs == 0 {
            return Err(invalid(
                "sessions.idle_ttl_secs",
                "must be at least 1 second",
            ));
        }
        if !matches!(self.auth.anonymous.as_str(), "loopback" | "any" | "none") {
            return Err(invalid(
                "auth.anonymous",
                format!(
                    "{:?} is not a policy; use \"loopback\", \"any\" or \"none\"",
                    self.auth.anonymous
                ),
            ));
        }
        for (i, k) in self.auth.api_keys.iter().enumerate() {
            if k.key_sha256.len() != 64 || !k.key_sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(invalid(
                    &format!("auth.api_keys[{i}].key_sha256"),
                    "must be 64 hex digits: the output of `mcp-hub hash-key <key>`",
                ));
            }
            if k.user.is_empty() || k.user == crate::auth::ANONYMOUS {
                return Err(invalid(
                    &format!("auth.api_keys[{i}].user"),
                    "must be a non-empty user id other than \"anonymous\"",
                ));
            }
        }
        if let Some(h) = &self.auth.trusted_user_header {
            if actix_web::http::header::HeaderName::from_bytes(h.as_bytes()).is_err() {
                return Err(invalid(
                    "auth.trusted_user_header",
                    "must be a valid HTTP header name",
                ));
            }
        }
        let l = &self.limits;
        for (key, v) in [
            ("limits.global_per_second", l.global_per_second),
            ("limits.global_burst", l.global_burst),
            ("limits.user_per_minute", l.user_per_minute),
            ("limits.user_burst", l.user_burst),
            ("limits.server_per_second", l.server_per_second),
            ("limits.server_burst", l.server_burst),
        ] {
            if !(v >= 0.0 && v.is_finite()) {
                return Err(invalid(key, "must be 0 (unlimited) or a positive number"));
            }
        }
        if l.max_in_flight == 0 {
            return Err(invalid("limits.max_in_flight", "must be at least 1"));
        }
        let sv = &self.supervision;
        if sv.max_concurrent_starts == 0 {
            return Err(invalid(
                "supervision.max_concurrent_starts",
                "must be at least 1",
            ));
        }
        if sv.crash_loop_limit == 0
            || sv.health_failures == 0
            || sv.backoff_base_ms == 0
            || sv.backoff_max_ms < sv.backoff_base_ms
        {
            return Err(invalid("supervision", "crash_loop_limit and health_failures must be at least 1, backoff_base_ms above 0 and at most backoff_max_ms"));
        }
        if self.tasks.max_working_per_user == 0
            || self.tasks.default_ttl_secs > self.tasks.max_ttl_secs
        {
            return Err(invalid(
                "tasks",
                "max_working_per_user must be at least 1 and default_ttl_secs at most max_ttl_secs",
            ));
        }
        let t = &self.timeouts;
        let chain = [
            ("timeouts.client_ms", t.client_ms),
            ("timeouts.hub_ms", t.hub_ms),
            ("timeouts.server_ms", t.server_ms),
            ("timeouts.external_ms", t.external_ms),
        ];
        for pair in chain.windows(2) {
            let ((outer, o), (inner, i)) = (pair[0], pair[1]);
            if i == 0 || i >= o {
                return Err(invalid(inner, format!("{i} ms must be above 0 and shorter than {outer} ({o} ms): each layer must give up before the layer around it")));
            }
        }
        if t.hard_max_ms < t.hub_ms {
            return Err(invalid(
                "timeouts.hard_max_ms",
                format!(
                    "{} ms must be at least timeouts.hub_ms ({} ms): progress may only extend a call",
                    t.hard_max_ms, t.hub_ms
                ),
            ));
        }
        let upstreams = self.security.upstreams.policy()?;
        let mut ids = HashSet::new();
        for (i, def) in self.servers.iter().enumerate() {
            def.validate()
                .and_then(|()| upstreams.check_def(def))
                .map_err(|e| invalid(&format!("servers[{i}].{}", e.field), e.message))?;
            if !ids.insert(def.id.as_str()) {
                return Err(invalid(
                    &format!("servers[{i}].id"),
                    format!("{:?} is used twice; ids must be unique", def.id),
                ));
            }
            let overrides = def.timeout_ms.map(|ms| ("timeout_ms".to_string(), ms));
            let per_tool = def
                .tool_timeouts_ms
                .iter()
                .map(|(tool, ms)| (format!("tool_timeouts_ms.{tool}"), *ms));
            for (key, ms) in overrides.into_iter().chain(per_tool) {
                if ms >= t.hub_ms {
                    return Err(invalid(
                        &format!("servers[{i}].{key}"),
                        format!(
                            "{ms} ms must be shorter than timeouts.hub_ms ({} ms)",
                            t.hub_ms
                        ),
                    ));
                }
            }
        }
        if self.admin_token.as_deref().is_some_and(|t| t.len() < 16) {
            return Err(invalid(
                "admin_token",
                "must be at least 16 characters (or unset, for loopback-only admin access)",
            ));
        }
        Ok(())
    }

    /// The URL peers reach this node at, given the port actually bound: `cluster.advertise_url`,
    /// else `http://{listen ip}:{port}` unless `listen` is a wildcard address.
    pub fn advertise_url(&self, port: u16) -> Option<String> {
        if let Some(url) = &self.cluster.advertise_url {
            return Some(url.trim_end_matches('/').to_string());
        }
        let addr = self.listen_addr().ok()?;
        (!addr.ip().is_unspecified()).then(|| match addr.ip() {
            std::net::IpAddr::V6(ip) => format!("http://[{ip}]:{port}"),
            ip => format!("http://{ip}:{port}"),
        })
    }

    /// The listen address.
    pub fn listen_addr(&self) -> Result<SocketAddr, ConfigError> {
        self.listen.parse().map_err(|_| {
            invalid(
                "listen",
                format!(
                    "{:?} is not host:port; e.g. \"127.0.0.1:8080\" (MCP_HUB_LISTEN)",
                    self.listen
                ),
            )
        })
    }
}

/// Short environment names the operator docs use for supervision keys.
const WORKER_ALIASES: [(&str, &str); 2] = [
    ("MCP_WORKER_MAX", "worker_max"),
    ("MCP_WORKER_IDLE_TTL", "worker_idle_ttl_secs"),
];

/// `MCP_HUB_*` variables that belong to the CLI or the test tooling, not to the config.
const NOT_CONFIG_VARS: &[&str] = &[
    "MCP_HUB_CONFIG",
    "MCP_HUB_E2E_",
    "MCP_HUB_CI_",
    "MCP_HUB_BIN",
];

fn set_path(root: &mut toml::Value, defaults: &toml::Value, path: &[String], raw: &str) {
    let like = path.iter().try_fold(defaults, |v, k| v.get(k.as_str()));
    let value = match like {
        Some(toml::Value::Integer(_)) => raw
            .parse::<i64>()
            .map(toml::Value::Integer)
            .unwrap_or_else(|_| toml::Value::String(raw.into())),
        Some(toml::Value::Float(_)) => raw
            .parse::<f64>()
            .map(toml::Value::Float)
            .unwrap_or_else(|_| toml::Value::String(raw.into())),
        Some(toml::Value::Boolean(_)) => raw
            .parse::<bool>()
            .map(toml::Value::Boolean)
            .unwrap_or_else(|_| toml::Value::String(raw.into())),
        Some(toml::Value::Array(_)) => toml::Value::Array(
            raw.split(',')
                .map(|s| toml::Value::String(s.trim().to_string()))
                .filter(|v| v.as_str() != Some(""))
                .collect(),
        ),
        _ => toml::Value::String(raw.into()),
    };
    let mut node = root;
    for key in &path[..path.len() - 1] {
        let Some(table) = node.as_table_mut() else {
            return;
        };
        node = table
            .entry(key.clone())
            .or_insert_with(|| toml::Value::Table(Default::default()));
    }
    if let (Some(table), Some(last)) = (node.as_table_mut(), path.last()) {
        if raw.is_empty() {
            table.remove(last);
        } else {
            table.insert(last.clone(), value);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Iterator<Item = (String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<Vec<_>>()
            .into_iter()
    }

    #[test]
    fn embedded_default_is_valid() {
        let s = Settings::from_toml("embedded", EMBEDDED_DEFAULT, env(&[])).unwrap();
        assert_eq!(s.listen, "127.0.0.1:8080");
        assert_eq!(s.servers[0].id, "demo");
    }

    #[test]
    fn environment_overrides_keys() {
        let s = Settings::from_toml(
            "t",
            "",
            env(&[
                ("MCP_HUB_LISTEN", "127.0.0.1:0"),
                ("MCP_HUB_HTTP__MAX_BODY_BYTES", "4096"),
                ("REDIS_URL", "redis://x"),
            ]),
        )
        .unwrap();
        assert_eq!(s.listen, "127.0.0.1:0");
        assert_eq!(s.http.max_body_bytes, 4096);
        assert_eq!(s.redis_url.as_deref(), Some("redis://x"));
        let s = Settings::from_toml(
            "t",
            "",
            env(&[
                ("MCP_HUB_LIMITS__GLOBAL_PER_SECOND", "5"),
                ("MCP_HUB_AUTH__TRUSTED_USER_HEADER", "X-User"),
            ]),
        )
        .unwrap();
        assert_eq!(
            s.limits.global_per_second, 5.0,
            "floats come from the environment too"
        );
        assert_eq!(
            s.auth.trusted_user_header.as_deref(),
            Some("X-User"),
            "keys unset by default too"
        );
        let s = Settings::from_toml(
            "t",
            "",
            env(&[
                ("MCP_HUB_LISTN", "x"),
                ("MCP_HUB_CONFIG", "f"),
                ("MCP_HUB_ADMIN_TOKEN", "0123456789abcdef0"),
            ]),
        )
        .unwrap();
        assert_eq!(
            s.warnings.len(),
            1,
            "a typo is reported, CLI variables are not: {:?}",
            s.warnings
        );
        assert!(s.warnings[0].contains("MCP_HUB_LISTN"));
        assert_eq!(s.admin_token.as_deref(), Some("0123456789abcdef0"));
    }

    #[test]
    fn errors_name_the_key() {
        let e = Settings::from_toml("t", "listen = \"nope\"", env(&[]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("`listen`"), "{e}");
        let e = Settings::from_toml("t", "[timeouts]\nhub_ms = 40000", env(&[]))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("timeouts.hub_ms") && e.contains("timeouts.client_ms"),
            "{e}"
        );
        let e = Settings::from_toml("t", "[http]\nmax_body = 1", env(&[]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("max_body"), "{e}");
        let e = Settings::from_toml("t", "", env(&[("MCP_HUB_HTTP__MAX_BODY_BYTES", "lots")]))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("http.max_body_bytes") && e.contains("MCP_HUB_HTTP__MAX_BODY_BYTES"),
            "{e}"
        );
        let e = Settings::from_toml(
            "t",
            "[[servers]]\nid = \"x\"\ntransport = \"stdio\"",
            env(&[]),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("servers[0].command"), "{e}");
    }

    #[test]
    fn upstream_urls_face_the_ssrf_policy() {
        let meta = "[[servers]]\nid = \"m\"\ntransport = \"streamable_http\"\nurl = \"http://169.254.169.254/mcp\"";
        let e = Settings::from_toml("t", meta, env(&[]))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("servers[0].url")
                && e.contains("link-local (cloud metadata)")
                && e.contains("security.upstreams.allow_link_local"),
            "{e}"
        );
        let private = "[[servers]]\nid = \"p\"\ntransport = \"streamable_http\"\nurl = \"http://10.0.0.5/mcp\"";
        assert!(Settings::from_toml("t", private, env(&[])).is_err());
        let s = Settings::from_toml(
            "t",
            private,
            env(&[("MCP_HUB_SECURITY__UPSTREAMS__ALLOW_PRIVATE", "true")]),
        )
        .unwrap();
        assert!(s.security.upstreams.allow_private && s.warnings.is_empty());
        let s = Settings::from_toml(
            "t",
            private,
            env(&[(
                "MCP_HUB_SECURITY__UPSTREAMS__ALLOW_HOSTS",
                "10.0.0.0/24, mcp.internal",
            )]),
        )
        .unwrap();
        assert_eq!(
            s.security.upstreams.allow_hosts,
            ["10.0.0.0/24", "mcp.internal"]
        );
        let e = Settings::from_toml(
            "t",
            "[security.upstreams]\nallow_hosts = [\"10.0.0.0/99\"]",
            env(&[]),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("security.upstreams.allow_hosts[0]"), "{e}");
    }
}

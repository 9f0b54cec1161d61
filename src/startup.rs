//! Building and running the hub: actors first (registry, supervisor, directories), then the
//! HTTP server bound to its listener (port 0 works; [`Application::port`] tells the real
//! one). Shutdown is ordered: stop accepting, let requests finish, end sessions, stop
//! servers (their children are killed and reaped).

use actix::prelude::*;
use actix_web::middleware::from_fn;
use actix_web::{web, App, HttpServer};
use mcp_hub_actors::cluster::{Cluster, NodeInfo};
use mcp_hub_actors::directory::ServerDirectory;
use mcp_hub_actors::registry::{FileStore, RedisStore, RegistryActor, RegistryError};
use mcp_hub_actors::server::children::ChildLedger;
use mcp_hub_actors::server::ServerEnv;
use mcp_hub_actors::session::SharedSessions;
use mcp_hub_actors::session::{Close, LogLimits, SessionConfig, SessionDirectory};
use mcp_hub_actors::supervisor::{StopAll, Supervisor};
use mcp_hub_actors::tasks::{TaskConfig, TaskStore};
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tracing_actix_web::TracingLogger;

use crate::config::{ConfigError, Settings};
use crate::routes;
use crate::state::AppState;
use crate::telemetry::{request_id, HubRootSpan};

/// Why the hub could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// Bad configuration.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The registry could not be loaded.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// Binding or another I/O failure.
    #[error("{0}")]
    Io(String),
}

/// A built hub, bound and ready to run.
pub struct Application {
    port: u16,
    server: actix_web::dev::Server,
    state: web::Data<AppState>,
    supervisor: Addr<Supervisor>,
}

impl Application {
    /// Starts the actors and binds the HTTP server. `self_exe` is what `command = "@self"`
    /// runs (this binary; tests pass the built `mcp-hub`).
    pub async fn build(settings: Settings, self_exe: PathBuf) -> Result<Self, StartupError> {
        let settings = Arc::new(settings);
        std::fs::create_dir_all(&settings.state_dir).map_err(|e| {
            StartupError::Io(format!(
                "cannot create state_dir {}: {e} (set MCP_HUB_STATE_DIR to a writable directory)",
                settings.state_dir.display()
            ))
        })?;
        mcp_hub_actors::server::transport::tls::configure(settings.tls_ca_file.as_deref())
            .map_err(|e| {
                StartupError::Config(ConfigError::Invalid {
                    key: "tls_ca_file".into(),
                    message: e.reason,
                })
            })?;
        let upstream_policy = Arc::new(settings.security.upstreams.policy()?);
        // Bind first: the port is known (port 0 works) before anything advertises it.
        let addr = settings.listen_addr()?;
        let listener = TcpListener::bind(addr).map_err(|e| {
            StartupError::Io(format!(
                "cannot listen on {addr}: {e} (change listen / MCP_HUB_LISTEN)"
            ))
        })?;
        let port = listener
            .local_addr()
            .map_err(|e| StartupError::Io(e.to_string()))?
            .port();
        let mut redis_conn = None;
        let registry = match open_store(&settings).await? {
            AnyStore::File(store) => RegistryActor::load(store, settings.servers.clone()).await?,
            AnyStore::Redis(store) => {
                redis_conn = Some(store.connection());
                RegistryActor::load(store, settings.servers.clone()).await?
            }
        }
        .start();
        let servers = ServerDirectory::new();
        let t = &settings.timeouts;
        // With Redis, this node's place in the cluster: the NodeActor publishes the live
        // nodes, forwarding ServerActors read them.
        let node_id = settings.node_id.clone().unwrap_or_else(default_node_id);
        let me = NodeInfo {
            id: node_id.clone(),
            url: settings.advertise_url(port),
            labels: settings.cluster.labels.clone(),
            status: "ready".into(),
        };
        let (peers_tx, peers_rx) = tokio::sync::watch::channel(Arc::new(Vec::new()));
        let cluster = redis_conn.as_ref().map(|_| Cluster {
            me: me.clone(),
            token: settings.cluster.token.clone(),
            nodes: peers_rx,
        });
        if redis_conn.is_some() && me.url.is_none() {
            tracing::warn!(
                event = "cluster.no_advertise_url",
                listen = %settings.listen,
                "listening on a wildcard address without cluster.advertise_url: other instances cannot forward calls of placed servers to this one"
            );
        }
        // Children a crashed earlier run of this node left alive go before new ones start.
        let children = Arc::new(ChildLedger::new(&settings.state_dir));
        children
            .reap_ghosts(Duration::from_millis(settings.supervision.stop_grace_ms))
            .await;
        let env = Arc::new(ServerEnv {
            self_exe,
            events: servers.events(),
            default_timeout_ms: settings.timeouts.server_ms,
            external_timeout_ms: settings.timeouts.external_ms,
            supervision: settings.supervision.policy(),
            start_permits: Arc::new(tokio::sync::Semaphore::new(
                settings.supervision.max_concurrent_starts,
            )),
            progress_hard_max: t
                .progress_extends
                .then(|| Duration::from_millis(t.hard_max_ms)),
            worker_slots: (settings.supervision.worker_max > 0)
                .then(|| Arc::new(tokio::sync::Semaphore::new(settings.supervision.worker_max))),
            children,
            cluster,
            upstream_policy: upstream_policy.clone(),
            upstream_sessions: mcp_hub_actors::server::upstream_session::UpstreamSessionLimits {
                max_contexts: settings.limits.upstream_sessions_per_server,
                idle_ttl: Duration::from_secs(settings.sessions.upstream_idle_ttl_secs),
                store: redis_conn.as_ref().map(|conn| {
                    mcp_hub_actors::server::upstream_session::UpstreamSessionStore::new(
                        conn.clone(),
                        &settings.redis_prefix,
                    )
                }),
            },
        });
        let supervisor = Supervisor::new(registry.clone(), servers.clone(), env).start();
        let sessions = SessionDirectory::new(
            SessionConfig {
                idle_ttl: Duration::from_secs(settings.sessions.idle_ttl_secs),
                max_sessions: settings.sessions.max_sessions,
                page_size: settings.sessions.page_size,
                hub_timeout: Duration::from_millis(settings.timeouts.hub_ms),
                stream_buffer: settings.sessions.stream_buffer,
                max_sessions_per_user: settings.sessions.max_sessions_per_user,
                max_in_flight: settings.limits.max_in_flight,
                max_arguments_bytes: settings.limits.max_arguments_bytes,
                progress_hard_max: t.progress_extends.then(|| {
                    Duration::from_millis(t.hard_max_ms + t.hub_ms.saturating_sub(t.server_ms))
                }),
                log: LogLimits {
                    max_events: settings.sessions.log_max_events,
                    max_bytes: settings.sessions.log_max_bytes,
                    max_age: Duration::from_secs(settings.sessions.log_max_age_secs),
                },
            },
            servers.clone(),
            TaskStore::new(TaskConfig {
                default_ttl: Duration::from_secs(settings.tasks.default_ttl_secs),
                max_ttl: Duration::from_secs(settings.tasks.max_ttl_secs),
                max_working_per_owner: settings.tasks.max_working_per_user,
                poll_interval_ms: settings.tasks.poll_interval_ms,
                page_size: settings.sessions.page_size,
            })
            .start(),
        );
        let sessions = match &redis_conn {
            Some(conn) if settings.sessions.shared => sessions.with_shared(SharedSessions::new(
                conn.clone(),
                &settings.redis_prefix,
                &node_id,
                Duration::from_secs(settings.sessions.idle_ttl_secs),
                settings.sessions.log_max_events,
            )),
            _ => sessions,
        };
        if let (Some(shared), Some(url)) = (sessions.shared(), settings.redis_url.as_deref()) {
            shared
                .spawn_relay(url, sessions.clone())
                .map_err(|e| StartupError::Io(format!("{e} (check REDIS_URL / redis_url)")))?;
        }
        sessions.spawn_notifier();
        let mut limiter =
            mcp_hub_actors::ratelimit::RateLimiter::new(settings.limits.rate_limits());
        if let Some(conn) = &redis_conn {
            limiter = limiter.with_redis(conn.clone(), &settings.redis_prefix);
        }
        let redis_up = redis_conn
            .as_ref()
            .map(|_| Arc::new(std::sync::atomic::AtomicBool::new(true)));
        let nodes = match (redis_conn, &redis_up) {
            (Some(conn), Some(up)) => Some(
                mcp_hub_actors::nodes::NodeActor::new(
                    me,
                    settings.redis_prefix.clone(),
                    conn,
                    servers.clone(),
                    settings.limits.max_in_flight,
                    up.clone(),
                    peers_tx,
                )
                .start(),
            ),
            _ => None,
        };
        let state = web::Data::new(AppState {
            settings: settings.clone(),
            registry,
            servers,
            sessions,
            upstream_policy,
            auth: crate::auth::Auth::new(&settings.auth, settings.cluster.token.as_deref()),
            limiter,
            metrics: crate::metrics::install(),
            nodes,
            redis_up,
            modern: crate::routes::mcp::modern::ModernState::new(&settings.modern),
        });
        let app_state = state.clone();
        let mut server = HttpServer::new(move || {
            App::new()
                .app_data(app_state.clone())
                .wrap(TracingLogger::<HubRootSpan>::new())
                .wrap(from_fn(request_id))
                .configure(routes::configure)
        })
        .shutdown_timeout(settings.http.shutdown_timeout_secs)
        // Signals are handled by `run_until_stopped`, which drains before stopping.
        .disable_signals()
        // SSE frames go out in several small writes; without this Nagle holds each answer
        // for the client's delayed ACK (~40 ms per call on keep-alive connections).
        .tcp_nodelay(true);
        if settings.http.workers > 0 {
            server = server.workers(settings.http.workers);
        }
        let server = server
            .listen(listener)
            .map_err(|e| StartupError::Io(format!("cannot listen on {addr}: {e}")))?
            .run();
        tracing::info!(event = "hub.listening", addr = %format!("{}:{port}", addr.ip()), "hub.listening");
        Ok(Self {
            port,
            server,
            state,
            supervisor,
        })
    }

    /// The port actually bound.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A handle to stop the HTTP server.
    pub fn handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    /// The shared state (for tests).
    pub fn state(&self) -> web::Data<AppState> {
        self.state.clone()
    }

    /// Serves until SIGINT/SIGTERM (or [`Application::handle`] stops it), then shuts down in order.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        actix_rt::spawn(drain_on_signal(self.state.clone(), self.server.handle()));
        let result = self.server.await;
        for session in self.state.sessions.all() {
            session.do_send(Close { reason: "shutdown" });
        }
        let _ = self.supervisor.send(StopAll).await;
        // Children get their kill signal from the stopping actors; give the reapers a moment.
        actix_rt::time::sleep(Duration::from_millis(300)).await;
        tracing::info!(event = "hub.stopped", "hub.stopped");
        result
    }
}

/// On SIGTERM or SIGINT: stop taking sessions (readyz turns 503), let calls in flight finish
/// up to `http.shutdown_timeout_secs`, end the sessions (their SSE streams close), then stop
/// the HTTP server gracefully.
async fn drain_on_signal(state: web::Data<AppState>, handle: actix_web::dev::ServerHandle) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!(
            event = "hub.signals_unavailable",
            "cannot listen for SIGTERM/SIGINT"
        );
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    let deadline =
        std::time::Instant::now() + Duration::from_secs(state.settings.http.shutdown_timeout_secs);
    state.sessions.begin_drain();
    if let Some(nodes) = &state.nodes {
        nodes.do_send(mcp_hub_actors::nodes::SetNodeStatus("stopping"));
    }
    let in_flight = || {
        state
            .servers
            .snapshot()
            .iter()
            .map(|h| h.runtime.borrow().in_flight)
            .sum::<usize>()
    };
    tracing::info!(
        event = "hub.draining",
        in_flight = in_flight(),
        "hub.draining"
    );
    while in_flight() > 0 && std::time::Instant::now() < deadline {
        actix_rt::time::sleep(Duration::from_millis(50)).await;
    }
    for session in state.sessions.all() {
        session.do_send(Close { reason: "shutdown" });
    }
    handle.stop(true).await;
    if let Some(nodes) = &state.nodes {
        let _ = nodes.send(mcp_hub_actors::nodes::Deregister).await;
    }
}

/// The registry store the settings name: Redis when `redis_url` is set, else the file.
pub enum AnyStore {
    /// `{state_dir}/registry.json`.
    File(FileStore),
    /// Shared through Redis.
    Redis(RedisStore),
}

/// Opens the registry store (also used by `mcp-hub registry export|import`).
pub async fn open_store(settings: &Settings) -> Result<AnyStore, StartupError> {
    match settings.redis_url.as_deref().filter(|u| !u.is_empty()) {
        Some(url) => {
            let node = settings.node_id.clone().unwrap_or_else(default_node_id);
            let store = RedisStore::connect(
                url,
                &settings.redis_prefix,
                &node,
                Duration::from_secs(settings.reconcile_secs),
            )
            .await
            .map_err(|e| StartupError::Io(format!("{e} (check REDIS_URL / redis_url)")))?;
            Ok(AnyStore::Redis(store))
        }
        None => Ok(AnyStore::File(FileStore::new(&settings.state_dir))),
    }
}

/// This instance's node id: host name and process id.
pub fn default_node_id() -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "node".into());
    format!("{host}-{}", std::process::id())
}

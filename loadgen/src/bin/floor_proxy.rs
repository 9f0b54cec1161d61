//! The floor of a gateway built from this project's HTTP crates, for BENCHMARKS.md.
//!
//! `floor_proxy PORT` answers MCP `initialize` and `tools/call` itself (actix-web only: what
//! the server half of the hub costs at least). `floor_proxy PORT UPSTREAM_URL` forwards each
//! POST body to the upstream with awc and copies the answer back (actix-web in, awc out, no
//! actors, no sessions, no checks: what any actix-web + awc gateway costs at least per call).
//! Loopback only; no MCP semantics beyond what `loadgen run --tool echo` needs.
//!
//! ```text
//! cargo build --release -p loadgen
//! target/release/floor_proxy 9001 http://127.0.0.1:9000/mcp
//! ```

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use serde::Deserialize;
use serde_json::value::RawValue;

/// The only fields of a JSON-RPC message the echo mode reads.
#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow)]
    id: Option<&'a RawValue>,
    method: Option<&'a str>,
}

const SESSION: &str = "mcp-session-id";

/// The hub's allocator, so the floor differs from the hub only in what the hub does.
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

async fn echo(body: web::Bytes) -> HttpResponse {
    let Ok(env) = serde_json::from_slice::<Envelope>(&body) else {
        return HttpResponse::BadRequest().body("not a JSON-RPC message");
    };
    let Some(id) = env.id else {
        return HttpResponse::Accepted().finish();
    };
    let result = if env.method == Some("initialize") {
        r#"{"protocolVersion":"2025-06-18","capabilities":{"tools":{}},"serverInfo":{"name":"floor","version":"0"}}"#
    } else {
        r#"{"content":[{"type":"text","text":"hello from loadgen"}]}"#
    };
    HttpResponse::Ok()
        .content_type("application/json")
        .insert_header((SESSION, "floor"))
        .body(format!(
            r#"{{"jsonrpc":"2.0","id":{},"result":{result}}}"#,
            id.get()
        ))
}

/// Where the proxy mode forwards to.
struct Upstream {
    url: String,
    client: awc::Client,
}

async fn proxy(req: HttpRequest, body: web::Bytes, up: web::Data<Upstream>) -> HttpResponse {
    let mut out = up
        .client
        .post(&up.url)
        .insert_header(("content-type", "application/json"))
        .insert_header(("accept", "application/json, text/event-stream"));
    for name in [SESSION, "mcp-protocol-version"] {
        if let Some(v) = req.headers().get(name) {
            out = out.insert_header((name, v.clone()));
        }
    }
    let mut answer = match out.send_body(body).await {
        Ok(a) => a,
        Err(e) => return HttpResponse::BadGateway().body(e.to_string()),
    };
    let mut resp = HttpResponse::build(answer.status());
    for name in [SESSION, "content-type"] {
        if let Some(v) = answer.headers().get(name) {
            resp.insert_header((name, v.clone()));
        }
    }
    match answer.body().await {
        Ok(b) => resp.body(b),
        Err(e) => HttpResponse::BadGateway().body(e.to_string()),
    }
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let port: u16 = match args.next().map(|p| p.parse()) {
        Some(Ok(p)) => p,
        _ => {
            eprintln!("usage: floor_proxy PORT [UPSTREAM_URL]");
            std::process::exit(2);
        }
    };
    let upstream = args.next();
    // awc builds a rustls config for every client, even for http://; the hub installs the
    // same provider (actors/src/server/transport/tls.rs).
    let _ = rustls::crypto::ring::default_provider().install_default();
    HttpServer::new(move || {
        let app = App::new();
        match &upstream {
            None => app.route("/mcp", web::post().to(echo)),
            Some(url) => app
                .app_data(web::Data::new(Upstream {
                    url: url.clone(),
                    client: awc::Client::builder()
                        .connector(awc::Connector::new().limit(1000))
                        .finish(),
                }))
                .route("/mcp", web::post().to(proxy)),
        }
    })
    .bind(("127.0.0.1", port))?
    .run()
    .await
}

//! `GET /api/sessions`: live client sessions counted by user, transport and protocol
//! version. Session ids are left out: together with the user they are enough to join a
//! session, so an operator view has no use for them.

use actix_web::{web, HttpResponse};
use futures_util::future::join_all;
use mcp_hub_actors::session::{Inspect, SessionInfo};
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::Duration;

use crate::error::ApiError;
use crate::state::AppState;

/// How long one session may take to answer; a session busy past this is counted as
/// `unanswered` rather than holding the whole listing up.
const INSPECT_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Default, Serialize)]
struct Counts {
    sessions: usize,
    connected: usize,
    calls_in_flight: usize,
    log_events: usize,
    log_bytes: usize,
    by_transport: BTreeMap<&'static str, usize>,
}

impl Counts {
    fn add(&mut self, s: &SessionInfo) {
        self.sessions += 1;
        self.connected += usize::from(s.connected);
        self.calls_in_flight += s.calls_in_flight;
        self.log_events += s.log_events;
        self.log_bytes += s.log_bytes;
        *self.by_transport.entry(s.transport).or_default() += 1;
    }
}

#[derive(Serialize)]
struct UserCounts {
    user: String,
    #[serde(flatten)]
    counts: Counts,
}

#[derive(Serialize)]
struct Listing {
    #[serde(flatten)]
    total: Counts,
    by_protocol_version: BTreeMap<String, usize>,
    by_user: Vec<UserCounts>,
    /// Sessions that ended or did not answer in time while being counted.
    unanswered: usize,
}

/// `GET /api/sessions`.
pub async fn list(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    // One Inspect per session, all at once: each answers from its own mailbox, so the
    // listing takes as long as the slowest session, not the sum.
    let answers = join_all(
        state
            .sessions
            .all()
            .into_iter()
            .map(|addr| addr.send(Inspect).timeout(INSPECT_TIMEOUT)),
    )
    .await;
    let mut total = Counts::default();
    let mut by_version: BTreeMap<String, usize> = BTreeMap::new();
    let mut by_user: BTreeMap<String, Counts> = BTreeMap::new();
    let mut unanswered = 0;
    for answer in answers {
        let Ok(info) = answer else {
            unanswered += 1;
            continue;
        };
        total.add(&info);
        *by_version.entry(info.protocol_version.clone()).or_default() += 1;
        by_user.entry(info.user.clone()).or_default().add(&info);
    }
    Ok(HttpResponse::Ok().json(Listing {
        total,
        by_protocol_version: by_version,
        by_user: by_user
            .into_iter()
            .map(|(user, counts)| UserCounts { user, counts })
            .collect(),
        unanswered,
    }))
}

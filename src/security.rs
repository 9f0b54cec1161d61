//! Request checks shared by every route: Origin and Host validation (DNS-rebinding
//! protection, 403) and admin authentication (bearer token, or loopback-only without one).

use actix_web::http::header;
use actix_web::HttpRequest;

use crate::config::HttpSettings;

/// Whether a Host header value names this hub: loopback names on any port, or a configured host.
pub fn host_allowed(req: &HttpRequest, http: &HttpSettings) -> bool {
    let Some(host) = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
    else {
        return true; // HTTP/1.0 or HTTP/2 :authority handled by the server
    };
    if http.allowed_hosts.iter().any(|h| {
        h == "*" || h.eq_ignore_ascii_case(host) || h.eq_ignore_ascii_case(strip_port(host))
    }) {
        return true;
    }
    is_loopback_name(strip_port(host))
}

/// Whether an Origin header (if any) is allowed: absent, loopback, or configured.
pub fn origin_allowed(req: &HttpRequest, http: &HttpSettings) -> bool {
    let Some(origin) = req
        .headers()
        .get(header::ORIGIN)
        .and_then(|h| h.to_str().ok())
    else {
        return true;
    };
    if http
        .allowed_origins
        .iter()
        .any(|o| o == "*" || o.eq_ignore_ascii_case(origin))
    {
        return true;
    }
    let rest = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"));
    rest.is_some_and(|hostport| is_loopback_name(strip_port(hostport)))
}

fn strip_port(hostport: &str) -> &str {
    if let Some(rest) = hostport.strip_prefix('[') {
        return rest.split(']').next().map_or(hostport, |h| h);
    }
    hostport.rsplit_once(':').map_or(hostport, |(h, p)| {
        if p.bytes().all(|b| b.is_ascii_digit()) {
            h
        } else {
            hostport
        }
    })
}

fn is_loopback_name(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host == "::1"
        || host
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Whether the TCP peer is on this machine.
pub fn peer_is_loopback(req: &HttpRequest) -> bool {
    req.peer_addr().is_some_and(|a| a.ip().is_loopback())
}

/// Constant-time comparison, so the admin token cannot be guessed byte by byte from timing.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The bearer token of a request, if any.
pub fn bearer(req: &HttpRequest) -> Option<&str> {
    req.headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_ports_and_recognises_loopback() {
        assert_eq!(strip_port("127.0.0.1:8080"), "127.0.0.1");
        assert_eq!(strip_port("[::1]:80"), "::1");
        assert_eq!(strip_port("localhost"), "localhost");
        assert!(
            is_loopback_name("127.0.0.1")
                && is_loopback_name("::1")
                && is_loopback_name("LOCALHOST")
        );
        assert!(!is_loopback_name("evil.example.com"));
        assert!(
            constant_time_eq(b"abc", b"abc")
                && !constant_time_eq(b"abc", b"abd")
                && !constant_time_eq(b"ab", b"abc")
        );
    }

    /// With `==` (memcmp) a difference in the first byte is found ~10,000 times sooner than
    /// one in the last byte of a 1 MiB input; here both take as long (minimum of 15 runs
    /// each, so a busy machine does not decide).
    #[test]
    fn comparison_time_does_not_depend_on_where_inputs_differ() {
        use std::hint::black_box;
        use std::time::{Duration, Instant};
        let n = 1 << 20;
        let token = vec![b'a'; n];
        let mut early = token.clone();
        early[0] = b'b';
        let mut late = token.clone();
        late[n - 1] = b'b';
        let time = |guess: &[u8]| {
            (0..15)
                .map(|_| {
                    let t = Instant::now();
                    black_box(constant_time_eq(black_box(&token), black_box(guess)));
                    t.elapsed()
                })
                .min()
                .unwrap_or(Duration::ZERO)
        };
        let (early, late) = (time(&early), time(&late));
        assert!(
            early * 4 >= late,
            "a mismatch in the first byte answered in {early:?}, in the last in {late:?}"
        );
    }
}

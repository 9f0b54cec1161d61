//! The SSRF policy for upstream URLs: which addresses the hub may connect to on an
//! operator's behalf (`[security.upstreams]`).
//!
//! Checked twice. At registration (admin API, config file), [`UpstreamPolicy::check_def`]
//! refuses a URL whose host is an IP literal (including the decimal, hex and octal forms a
//! resolver would accept, like `http://2852039166/`) or a cloud metadata host name in a
//! refused class. At connect time every upstream connector resolves host names through
//! [`PolicyResolver`], which checks each resolved address, so a name that later resolves to
//! a refused address (DNS rebinding) is never connected to; IP literals, which skip the
//! resolver, are checked again by [`UpstreamPolicy::check_url`] before the transport opens.
//!
//! Loopback is allowed by default (local upstreams are the common case); link-local (cloud
//! metadata), private, unspecified, multicast, broadcast and reserved addresses are refused
//! unless the config allows them.

use futures_util::future::LocalBoxFuture;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use crate::registry::{DefError, ServerDef, TransportKind};

/// Where the fix lives, for messages.
const KEY: &str = "security.upstreams";

/// Host names of cloud metadata services (compared lowercase, without a trailing dot).
const METADATA_HOSTS: &[&str] = &[
    "metadata",
    "metadata.google.internal",
    "metadata.goog",
    "metadata.azure.internal",
    "instance-data",
    "instance-data.ec2.internal",
    "metadata.tencentyun.com",
];

/// Addresses of cloud metadata services (besides their whole link-local range).
const METADATA_IPS: &[IpAddr] = &[
    IpAddr::V4(Ipv4Addr::new(169, 254, 169, 254)),
    IpAddr::V4(Ipv4Addr::new(169, 254, 170, 2)),
    IpAddr::V4(Ipv4Addr::new(100, 100, 100, 200)),
    IpAddr::V6(Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254)),
];

/// Classes of addresses an upstream URL may point at, besides ordinary public ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddrClass {
    /// 127.0.0.0/8, ::1.
    Loopback,
    /// 10/8, 172.16/12, 192.168/16, 100.64/10 (shared address space), fc00::/7.
    Private,
    /// 169.254/16, fe80::/10 (cloud metadata lives here).
    LinkLocal,
    /// 0.0.0.0/8, `::`.
    Unspecified,
    /// 224/4, ff00::/8.
    Multicast,
    /// 255.255.255.255.
    Broadcast,
    /// 240/4 (reserved for future use).
    Reserved,
}

impl AddrClass {
    fn describe(self) -> &'static str {
        match self {
            AddrClass::Loopback => "loopback",
            AddrClass::Private => "in a private range",
            AddrClass::LinkLocal => "link-local",
            AddrClass::Unspecified => "unspecified",
            AddrClass::Multicast => "multicast",
            AddrClass::Broadcast => "broadcast",
            AddrClass::Reserved => "reserved",
        }
    }

    fn fix(self) -> String {
        match self {
            AddrClass::Loopback => format!("{KEY}.allow_loopback or allow_hosts"),
            AddrClass::Private => format!("{KEY}.allow_private or allow_hosts"),
            AddrClass::LinkLocal => format!("{KEY}.allow_link_local or allow_hosts"),
            _ => format!("{KEY}.allow_hosts"),
        }
    }
}

/// Why an upstream address is refused, or the policy could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SsrfError {
    /// The address is in a class the policy refuses.
    #[error("{host} is {what}; allow it with {fix}")]
    Refused {
        /// The host as written (or `name (address)` for a resolved name).
        host: String,
        /// The class, worded for the operator.
        what: String,
        /// The config keys that would allow it.
        fix: String,
    },
    /// The URL has no host.
    #[error("{0:?} names no host")]
    NoHost(String),
    /// An `allow_hosts` entry is neither a host name, an IP address nor a CIDR.
    #[error("{0:?} is not a host name, an IP address or a CIDR like \"10.0.0.0/8\"")]
    BadAllowEntry(String),
}

/// One `allow_hosts` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Allowed {
    /// A host name (lowercase, no trailing dot).
    Name(String),
    /// An address range.
    Net(IpAddr, u8),
}

/// Which upstream addresses the hub may connect to; see the module docs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamPolicy {
    allow_private: bool,
    allow_link_local: bool,
    allow_loopback: bool,
    /// Everything goes (peer forwarding, whose addresses come from the cluster config).
    allow_all: bool,
    allow_hosts: Vec<Allowed>,
}

impl Default for UpstreamPolicy {
    /// The default policy: loopback and public addresses only.
    fn default() -> Self {
        Self {
            allow_private: false,
            allow_link_local: false,
            allow_loopback: true,
            allow_all: false,
            allow_hosts: Vec::new(),
        }
    }
}

impl UpstreamPolicy {
    /// A policy from the config; an `allow_hosts` entry that does not parse is an error
    /// carrying its index.
    pub fn new(
        allow_private: bool,
        allow_link_local: bool,
        allow_loopback: bool,
        allow_hosts: &[String],
    ) -> Result<Self, (usize, SsrfError)> {
        let allow_hosts = allow_hosts
            .iter()
            .enumerate()
            .map(|(i, h)| parse_allowed(h).ok_or((i, SsrfError::BadAllowEntry(h.clone()))))
            .collect::<Result<_, _>>()?;
        Ok(Self {
            allow_private,
            allow_link_local,
            allow_loopback,
            allow_all: false,
            allow_hosts,
        })
    }

    /// A policy that allows every address (for connections whose address the operator
    /// configured outside the registry, like cluster peers).
    pub fn allow_all() -> Self {
        Self {
            allow_all: true,
            ..Self::default()
        }
    }

    /// Checks every URL a definition makes the hub fetch: `url`, `base_url` and an http(s)
    /// `openapi` document. The error names the field.
    pub fn check_def(&self, def: &ServerDef) -> Result<(), DefError> {
        let fields: [(&str, Option<&str>); 3] = match def.transport {
            TransportKind::Stdio => return Ok(()),
            TransportKind::StreamableHttp | TransportKind::Sse => {
                [("url", def.url.as_deref()), ("", None), ("", None)]
            }
            TransportKind::Rest => [
                ("base_url", def.base_url.as_deref()),
                ("openapi", def.openapi.as_deref().filter(|o| is_http(o))),
                ("", None),
            ],
        };
        for (field, url) in fields {
            if let Some(url) = url {
                self.check_url(url).map_err(|e| DefError {
                    field: field.to_string(),
                    message: e.to_string(),
                })?;
            }
        }
        Ok(())
    }

    /// Checks a URL's host without resolving it: IP literals (in any form a resolver
    /// accepts) and metadata host names. Other names pass here; [`PolicyResolver`] checks
    /// what they resolve to.
    pub fn check_url(&self, url: &str) -> Result<(), SsrfError> {
        let uri: awc::http::Uri = url
            .parse()
            .map_err(|_| SsrfError::NoHost(url.to_string()))?;
        let host = uri
            .host()
            .ok_or_else(|| SsrfError::NoHost(url.to_string()))?;
        self.check_host(host)
    }

    /// Checks a bare host (name or literal, IPv6 with or without brackets).
    pub fn check_host(&self, host: &str) -> Result<(), SsrfError> {
        let name = normalize(host);
        if self.allow_all || self.name_allowed(&name) {
            return Ok(());
        }
        if let Some(ip) = parse_ip_loose(&name) {
            return self.check_ip(host, ip);
        }
        if METADATA_HOSTS.contains(&name.as_str()) {
            return Err(SsrfError::Refused {
                host: host.to_string(),
                what: "a cloud metadata host name".into(),
                fix: format!("{KEY}.allow_hosts"),
            });
        }
        Ok(())
    }

    /// Checks what `host` resolved to: every address must be allowed (unless the name itself
    /// is in `allow_hosts`).
    pub fn check_resolved(&self, host: &str, addrs: &[IpAddr]) -> Result<(), SsrfError> {
        if self.allow_all || self.name_allowed(&normalize(host)) {
            return Ok(());
        }
        self.check_host(host)?;
        for ip in addrs {
            self.check_ip(&format!("{host} ({ip})"), *ip)?;
        }
        Ok(())
    }

    /// Checks one address; `shown` is how the error names it.
    pub fn check_ip(&self, shown: &str, ip: IpAddr) -> Result<(), SsrfError> {
        let ip = canonical(ip);
        if self.allow_all || self.net_allowed(ip) {
            return Ok(());
        }
        let Some(class) = classify(ip) else {
            return Ok(());
        };
        let allowed = match class {
            AddrClass::Loopback => self.allow_loopback,
            AddrClass::Private => self.allow_private,
            AddrClass::LinkLocal => self.allow_link_local,
            _ => false,
        };
        if allowed {
            return Ok(());
        }
        let mut what = class.describe().to_string();
        if METADATA_IPS.contains(&ip) {
            what.push_str(" (cloud metadata)");
        }
        Err(SsrfError::Refused {
            host: shown.to_string(),
            what,
            fix: class.fix(),
        })
    }

    fn name_allowed(&self, name: &str) -> bool {
        self.allow_hosts
            .iter()
            .any(|a| matches!(a, Allowed::Name(n) if n == name))
            || parse_ip_loose(name).is_some_and(|ip| self.net_allowed(canonical(ip)))
    }

    fn net_allowed(&self, ip: IpAddr) -> bool {
        self.allow_hosts.iter().any(|a| match a {
            Allowed::Net(net, prefix) => in_net(ip, *net, *prefix),
            Allowed::Name(_) => false,
        })
    }
}

fn is_http(s: &str) -> bool {
    s.starts_with("http://") || s.starts_with("https://")
}

/// Lowercase, without IPv6 brackets or a trailing dot.
fn normalize(host: &str) -> String {
    let h = host.trim_start_matches('[').trim_end_matches(']');
    h.trim_end_matches('.').to_ascii_lowercase()
}

/// An IP literal as a resolver would read it: standard IPv4/IPv6, or the `inet_aton` forms
/// (`2852039166`, `0xa9fea9fe`, `0251.0376.0251.0376`, `169.254.43518`).
pub fn parse_ip_loose(host: &str) -> Option<IpAddr> {
    let host = normalize(host);
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Some(ip);
    }
    parse_ipv4_loose(&host).map(IpAddr::V4)
}

fn parse_ipv4_loose(s: &str) -> Option<Ipv4Addr> {
    let parts: Vec<&str> = s.split('.').collect();
    if parts.len() > 4 {
        return None;
    }
    let nums = parts
        .iter()
        .map(|p| parse_aton_part(p))
        .collect::<Option<Vec<u64>>>()?;
    let (last, head) = nums.split_last()?;
    if head.iter().any(|n| *n > 255) {
        return None;
    }
    let last_bits = 32 - 8 * head.len() as u32;
    if *last >= 1u64 << last_bits {
        return None;
    }
    let mut v = 0u32;
    for (i, n) in head.iter().enumerate() {
        v |= (*n as u32) << (24 - 8 * i as u32);
    }
    Some(Ipv4Addr::from(v | *last as u32))
}

fn parse_aton_part(p: &str) -> Option<u64> {
    if let Some(hex) = p.strip_prefix("0x").or_else(|| p.strip_prefix("0X")) {
        return u64::from_str_radix(hex, 16).ok();
    }
    if p.len() > 1 && p.starts_with('0') {
        return u64::from_str_radix(&p[1..], 8).ok();
    }
    if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    p.parse().ok()
}

/// IPv4 addresses carried in IPv6 (mapped `::ffff:a.b.c.d`, compatible `::a.b.c.d`, NAT64
/// `64:ff9b::a.b.c.d`) as the IPv4 address they reach.
fn canonical(ip: IpAddr) -> IpAddr {
    let IpAddr::V6(v6) = ip else { return ip };
    if let Some(v4) = v6.to_ipv4_mapped() {
        return IpAddr::V4(v4);
    }
    let s = v6.segments();
    let embedded = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    let compatible = s[..6].iter().all(|x| *x == 0) && !v6.is_unspecified() && !v6.is_loopback();
    let nat64 = s[0] == 0x64 && s[1] == 0xff9b && s[2..6].iter().all(|x| *x == 0);
    if compatible || nat64 {
        IpAddr::V4(embedded)
    } else {
        ip
    }
}

/// The class of an address, or `None` for an ordinary (public) one.
pub fn classify(ip: IpAddr) -> Option<AddrClass> {
    match canonical(ip) {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            Some(if o[0] == 0 {
                AddrClass::Unspecified
            } else if v4.is_loopback() {
                AddrClass::Loopback
            } else if v4.is_link_local() {
                AddrClass::LinkLocal
            } else if v4.is_private() || (o[0] == 100 && (o[1] & 0xc0) == 64) {
                AddrClass::Private
            } else if v4.is_broadcast() {
                AddrClass::Broadcast
            } else if v4.is_multicast() {
                AddrClass::Multicast
            } else if o[0] >= 240 {
                AddrClass::Reserved
            } else {
                return None;
            })
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            Some(if v6.is_unspecified() {
                AddrClass::Unspecified
            } else if v6.is_loopback() {
                AddrClass::Loopback
            } else if first & 0xffc0 == 0xfe80 {
                AddrClass::LinkLocal
            } else if first & 0xfe00 == 0xfc00 {
                AddrClass::Private
            } else if v6.is_multicast() {
                AddrClass::Multicast
            } else {
                return None;
            })
        }
    }
}

fn in_net(ip: IpAddr, net: IpAddr, prefix: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

fn parse_allowed(entry: &str) -> Option<Allowed> {
    let entry = entry.trim();
    if let Some((addr, prefix)) = entry.split_once('/') {
        let net = canonical(addr.parse::<IpAddr>().ok()?);
        let prefix: u8 = prefix.parse().ok()?;
        let max = if net.is_ipv4() { 32 } else { 128 };
        return (prefix <= max).then_some(Allowed::Net(net, prefix));
    }
    if let Ok(ip) = normalize(entry).parse::<IpAddr>() {
        let ip = canonical(ip);
        return Some(Allowed::Net(ip, if ip.is_ipv4() { 32 } else { 128 }));
    }
    let name = normalize(entry);
    let ok = !name.is_empty()
        && name.len() <= 253
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'));
    ok.then_some(Allowed::Name(name))
}

/// Resolves upstream host names and refuses any answer the policy does not allow, so the
/// address checked is the address connected to.
pub struct PolicyResolver(pub Arc<UpstreamPolicy>);

impl actix_tls::connect::Resolve for PolicyResolver {
    fn lookup<'a>(
        &'a self,
        host: &'a str,
        port: u16,
    ) -> LocalBoxFuture<'a, Result<Vec<SocketAddr>, Box<dyn std::error::Error>>> {
        Box::pin(async move {
            // A numeric form the connector did not recognise (`2852039166`): check it as the
            // address it is, and connect to that address.
            if let Some(ip) = parse_ip_loose(host) {
                self.0.check_ip(host, ip)?;
                return Ok(vec![SocketAddr::new(ip, port)]);
            }
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port)).await?.collect();
            let ips: Vec<IpAddr> = addrs.iter().map(SocketAddr::ip).collect();
            self.0.check_resolved(host, &ips)?;
            Ok(addrs)
        })
    }
}

/// The TCP connector every upstream HTTP client uses: name resolution through
/// [`PolicyResolver`].
pub fn tcp_connector(policy: Arc<UpstreamPolicy>) -> actix_tls::connect::ConnectorService {
    actix_tls::connect::Connector::new(actix_tls::connect::Resolver::custom(PolicyResolver(policy)))
        .service()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn refused(p: &UpstreamPolicy, url: &str) -> String {
        match p.check_url(url) {
            Err(e) => e.to_string(),
            Ok(()) => panic!("{url} should be refused"),
        }
    }

    #[test]
    fn ipv4_classes() {
        let c = |s: &str| classify(s.parse().unwrap());
        assert_eq!(c("127.0.0.1"), Some(AddrClass::Loopback));
        assert_eq!(c("169.254.169.254"), Some(AddrClass::LinkLocal));
        assert_eq!(c("10.1.2.3"), Some(AddrClass::Private));
        assert_eq!(c("172.31.255.255"), Some(AddrClass::Private));
        assert_eq!(c("172.32.0.1"), None);
        assert_eq!(c("192.168.1.1"), Some(AddrClass::Private));
        assert_eq!(c("100.64.0.1"), Some(AddrClass::Private));
        assert_eq!(c("100.128.0.1"), None);
        assert_eq!(c("0.0.0.0"), Some(AddrClass::Unspecified));
        assert_eq!(c("224.0.0.1"), Some(AddrClass::Multicast));
        assert_eq!(c("255.255.255.255"), Some(AddrClass::Broadcast));
        assert_eq!(c("240.0.0.1"), Some(AddrClass::Reserved));
        assert_eq!(c("8.8.8.8"), None);
    }

    #[test]
    fn ipv6_classes_and_embedded_ipv4() {
        let c = |s: &str| classify(s.parse().unwrap());
        assert_eq!(c("::1"), Some(AddrClass::Loopback));
        assert_eq!(c("::"), Some(AddrClass::Unspecified));
        assert_eq!(c("fe80::1"), Some(AddrClass::LinkLocal));
        assert_eq!(c("febf::1"), Some(AddrClass::LinkLocal));
        assert_eq!(c("fd00:ec2::254"), Some(AddrClass::Private));
        assert_eq!(c("fc00::1"), Some(AddrClass::Private));
        assert_eq!(c("ff02::1"), Some(AddrClass::Multicast));
        assert_eq!(c("2001:4860:4860::8888"), None);
        assert_eq!(c("::ffff:169.254.169.254"), Some(AddrClass::LinkLocal));
        assert_eq!(c("::ffff:10.0.0.1"), Some(AddrClass::Private));
        assert_eq!(c("::ffff:127.0.0.1"), Some(AddrClass::Loopback));
        assert_eq!(c("64:ff9b::169.254.169.254"), Some(AddrClass::LinkLocal));
        assert_eq!(c("::169.254.169.254"), Some(AddrClass::LinkLocal));
    }

    #[test]
    fn numeric_tricks_are_read_as_the_resolver_reads_them() {
        let meta = Some(IpAddr::V4(Ipv4Addr::new(169, 254, 169, 254)));
        for s in [
            "2852039166",
            "0xa9fea9fe",
            "0XA9FEA9FE",
            "0251.0376.0251.0376",
            "0xa9.0xfe.0xa9.0xfe",
            "169.254.43518",
            "169.16689662",
            "169.254.169.254.",
            "[::ffff:169.254.169.254]",
        ] {
            assert_eq!(parse_ip_loose(s).map(canonical), meta, "{s}");
        }
        for s in ["example.com", "1.2.3.4.5", "256.1.1.1", "0x", "1..2", "09"] {
            assert_eq!(parse_ip_loose(s), None, "{s}");
        }
    }

    #[test]
    fn default_policy_refuses_metadata_private_and_link_local_but_allows_loopback() {
        let p = UpstreamPolicy::default();
        let e = refused(&p, "http://169.254.169.254/latest/meta-data");
        assert_eq!(e, "169.254.169.254 is link-local (cloud metadata); allow it with security.upstreams.allow_link_local or allow_hosts");
        for url in [
            "http://2852039166/",
            "http://0xa9fea9fe/",
            "http://0251.0376.0251.0376/",
            "http://[::ffff:169.254.169.254]/",
            "http://[fe80::1]:8080/",
            "http://10.0.0.5:8080/mcp",
            "http://172.16.0.1/",
            "http://192.168.0.1/",
            "http://100.64.1.1/",
            "http://[fd00::1]/",
            "http://0.0.0.0:80/",
            "http://[::]/",
            "http://224.0.0.1/",
            "http://255.255.255.255/",
            "http://metadata.google.internal/computeMetadata/v1/",
            "http://METADATA.google.internal./",
            "http://169.254.169.254./",
        ] {
            refused(&p, url);
        }
        assert!(refused(&p, "http://10.0.0.5/").contains("security.upstreams.allow_private"));
        assert!(refused(&p, "http://metadata.google.internal./").contains("metadata host name"));
        for url in [
            "http://127.0.0.1:9000/mcp",
            "http://localhost:9000/mcp",
            "http://[::1]:9000/mcp",
            "https://api.example.com/v1",
            "http://8.8.8.8/",
        ] {
            assert_eq!(p.check_url(url), Ok(()), "{url}");
        }
    }

    #[test]
    fn config_switches_and_allow_hosts_bypass() {
        let p = UpstreamPolicy::new(true, false, false, &[]).unwrap();
        assert_eq!(p.check_url("http://10.0.0.5/"), Ok(()));
        refused(&p, "http://169.254.169.254/");
        refused(&p, "http://127.0.0.1/");
        let p = UpstreamPolicy::new(false, true, true, &[]).unwrap();
        assert_eq!(p.check_url("http://169.254.169.254/"), Ok(()));
        refused(&p, "http://10.0.0.5/");
        let hosts = [
            "10.1.0.0/16".to_string(),
            "Metadata.Google.Internal.".to_string(),
            "fd00::/8".to_string(),
            "192.168.1.7".to_string(),
        ];
        let p = UpstreamPolicy::new(false, false, true, &hosts).unwrap();
        assert_eq!(p.check_url("http://10.1.2.3/"), Ok(()));
        refused(&p, "http://10.2.0.1/");
        assert_eq!(p.check_url("http://metadata.google.internal/"), Ok(()));
        assert_eq!(p.check_url("http://[fd00::5]/"), Ok(()));
        assert_eq!(p.check_url("http://192.168.1.7:81/"), Ok(()));
        refused(&p, "http://192.168.1.8/");
        assert_eq!(
            UpstreamPolicy::new(false, false, true, &["10.0.0.0/33".into()]),
            Err((0, SsrfError::BadAllowEntry("10.0.0.0/33".into())))
        );
        assert!(UpstreamPolicy::new(false, false, true, &["a b".into()]).is_err());
        assert_eq!(
            UpstreamPolicy::allow_all().check_url("http://169.254.169.254/"),
            Ok(())
        );
    }

    #[test]
    fn resolved_addresses_are_each_checked() {
        let p = UpstreamPolicy::default();
        let meta: IpAddr = "169.254.169.254".parse().unwrap();
        let public: IpAddr = "93.184.216.34".parse().unwrap();
        assert_eq!(p.check_resolved("example.com", &[public]), Ok(()));
        let e = p
            .check_resolved("rebind.example.com", &[public, meta])
            .unwrap_err()
            .to_string();
        assert_eq!(e, "rebind.example.com (169.254.169.254) is link-local (cloud metadata); allow it with security.upstreams.allow_link_local or allow_hosts");
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        assert!(p.check_resolved("x.example.com", &[mapped]).is_err());
        let allowed =
            UpstreamPolicy::new(false, false, true, &["rebind.example.com".into()]).unwrap();
        assert_eq!(
            allowed.check_resolved("rebind.example.com.", &[meta]),
            Ok(())
        );
    }

    #[test]
    fn definitions_name_the_field() {
        let p = UpstreamPolicy::default();
        let def = |v: serde_json::Value| serde_json::from_value::<ServerDef>(v).unwrap();
        let e = p
            .check_def(&def(
                serde_json::json!({"id":"a","transport":"sse","url":"http://169.254.169.254/sse"}),
            ))
            .unwrap_err();
        assert_eq!(e.field, "url");
        let e = p
            .check_def(&def(serde_json::json!({"id":"a","transport":"rest","openapi":"http://10.0.0.1/spec.json"})))
            .unwrap_err();
        assert_eq!(e.field, "openapi");
        let e = p
            .check_def(&def(serde_json::json!({"id":"a","transport":"rest","base_url":"http://[fe80::1]/","tools":[{"name":"t","path":"/"}]})))
            .unwrap_err();
        assert_eq!(e.field, "base_url");
        assert!(p
            .check_def(&def(
                serde_json::json!({"id":"a","transport":"rest","openapi":"spec.json"})
            ))
            .is_ok());
    }

    #[actix_rt::test]
    async fn the_resolver_refuses_refused_answers() {
        use actix_tls::connect::Resolve;
        let strict = PolicyResolver(Arc::new(
            UpstreamPolicy::new(false, false, false, &[]).unwrap(),
        ));
        let e = strict
            .lookup("localhost", 80)
            .await
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("localhost (") && e.contains("is loopback"),
            "{e}"
        );
        let e = strict
            .lookup("2852039166", 80)
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("cloud metadata"), "{e}");
        let default = PolicyResolver(Arc::new(UpstreamPolicy::default()));
        let addrs = default.lookup("localhost", 80).await.unwrap();
        assert!(addrs.iter().all(|a| a.ip().is_loopback()), "{addrs:?}");
    }
}

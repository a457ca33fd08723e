//! The names the hub answers to as itself: its listen address on the port it bound (for a
//! loopback or unspecified address also `127.0.0.1`, `localhost` and `[::1]` on that
//! port), and the names in `allowed_hosts`.
//!
//! A page on a name that resolves to the hub (DNS rebinding) is same-origin with it in the
//! browser, and sends that name as `Host` and `Origin`. The development endpoints check
//! the `Host` a request was addressed to against these names, the websocket a browser's
//! `Origin`: neither trusts the request to name the hub.

use std::net::{IpAddr, SocketAddr};

use axum::http::header::{HOST, ORIGIN};
use axum::http::{HeaderMap, Uri};

/// One name the hub answers to, and on which port (`None`: any).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Allowed {
    host: String,
    port: Option<u16>,
}

/// The names the hub answers to as itself.
#[derive(Debug, Clone)]
pub(super) struct AllowedHosts(Vec<Allowed>);

impl AllowedHosts {
    /// The listen address `bound` (with the port actually bound) and the configured
    /// `allowed_hosts` (`name`: any port, `name:port`: that port). An entry that is not a
    /// host name or address stops the start.
    pub(super) fn new(configured: &[String], bound: SocketAddr) -> anyhow::Result<Self> {
        let port = Some(bound.port());
        let mut allowed = Vec::new();
        if !bound.ip().is_unspecified() {
            allowed.push(Allowed { host: host_of(bound.ip()), port });
        }
        if bound.ip().is_loopback() || bound.ip().is_unspecified() {
            for host in ["127.0.0.1", "localhost", "[::1]"] {
                allowed.push(Allowed { host: host.to_owned(), port });
            }
        }
        for entry in configured {
            let (host, port) = authority(entry).ok_or_else(|| {
                anyhow::anyhow!("allowed_hosts: `{entry}` is not a host name or address, with or without a port")
            })?;
            allowed.push(Allowed { host, port });
        }
        Ok(AllowedHosts(allowed))
    }

    /// Whether a request was addressed to the hub by one of its names: its `Host` header
    /// (HTTP/1.1), or the URI's authority (HTTP/2). A port left out is 80.
    pub(super) fn allows_host(&self, headers: &HeaderMap, uri: &Uri) -> bool {
        let mut hosts = headers.get_all(HOST).iter();
        let named = match (hosts.next(), hosts.next()) {
            (Some(host), None) => host.to_str().ok(),
            (None, _) => uri.authority().map(|a| a.as_str()),
            (Some(_), Some(_)) => None,
        };
        named.and_then(authority).is_some_and(|(host, port)| self.allows(&host, port.unwrap_or(80)))
    }

    /// Whether a browser's `Origin` is one of the hub's names (`http://` or `https://`,
    /// whose ports left out are 80 and 443). Without `Origin` the client is not a browser,
    /// and no page is driving it.
    pub(super) fn allows_origin(&self, headers: &HeaderMap) -> bool {
        let mut origins = headers.get_all(ORIGIN).iter();
        let origin = match (origins.next(), origins.next()) {
            (None, _) => return true,
            (Some(origin), None) => origin.to_str().unwrap_or_default(),
            (Some(_), Some(_)) => return false,
        };
        let (rest, default_port) = match (origin.strip_prefix("http://"), origin.strip_prefix("https://")) {
            (Some(rest), _) => (rest, 80),
            (_, Some(rest)) => (rest, 443),
            _ => return false, // `null`, `file://`, other schemes
        };
        authority(rest).is_some_and(|(host, port)| self.allows(&host, port.unwrap_or(default_port)))
    }

    fn allows(&self, host: &str, port: u16) -> bool {
        self.0.iter().any(|a| a.host == host && a.port.is_none_or(|p| p == port))
    }
}

/// An address as it stands in a `Host` header: IPv6 in brackets.
fn host_of(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(ip) => ip.to_string(),
        IpAddr::V6(ip) => format!("[{ip}]"),
    }
}

/// `host[:port]`, the host lowercased (an IPv6 address in brackets, as written in URLs);
/// `None` for anything else (a path, user info, an empty host or port, a bad character).
fn authority(text: &str) -> Option<(String, Option<u16>)> {
    let (host, port) = match text.strip_prefix('[') {
        Some(rest) => {
            let (address, after) = rest.split_once(']')?;
            let ip: std::net::Ipv6Addr = address.parse().ok()?;
            let port = match after {
                "" => None,
                after => Some(after.strip_prefix(':')?),
            };
            (format!("[{ip}]"), port)
        }
        None => {
            let (host, port) = match text.split_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (text, None),
            };
            let name = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '.';
            if host.is_empty() || !host.chars().all(name) {
                return None;
            }
            (host.to_ascii_lowercase(), port)
        }
    };
    let port = match port {
        None => None,
        Some(port) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => Some(port.parse().ok()?),
        Some(_) => return None,
    };
    Some((host, port))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn hosts(configured: &[&str], listen: &str) -> AllowedHosts {
        let configured: Vec<String> = configured.iter().map(|s| (*s).to_owned()).collect();
        AllowedHosts::new(&configured, listen.parse().expect("address")).expect("hosts")
    }

    fn host(hosts: &AllowedHosts, value: &str) -> bool {
        let mut headers = HeaderMap::new();
        headers.insert(HOST, HeaderValue::from_str(value).expect("header"));
        hosts.allows_host(&headers, &Uri::from_static("/dev/token"))
    }

    fn origin(hosts: &AllowedHosts, value: &str) -> bool {
        let mut headers = HeaderMap::new();
        headers.insert(ORIGIN, HeaderValue::from_str(value).expect("header"));
        hosts.allows_origin(&headers)
    }

    #[test]
    fn a_loopback_hub_answers_to_its_loopback_names_on_its_port() {
        let own = hosts(&[], "127.0.0.1:8360");
        for allowed in ["127.0.0.1:8360", "localhost:8360", "LOCALHOST:8360", "[::1]:8360", "[0:0::1]:8360"] {
            assert!(host(&own, allowed), "{allowed}");
        }
        for refused in [
            "attacker.example:8360",
            "attacker.example",
            "localhost",
            "127.0.0.1:8361",
            "localhost.:8360",
            "localhost:8360@attacker.example",
            "localhost:",
            "127.0.0.1:8360:8360",
            "",
        ] {
            assert!(!host(&own, refused), "{refused}");
        }
        assert!(!own.allows_host(&HeaderMap::new(), &Uri::from_static("/dev/token")), "no Host: refused");
        let h2 = Uri::from_static("http://localhost:8360/dev/token");
        assert!(own.allows_host(&HeaderMap::new(), &h2), "HTTP/2: the authority");
    }

    #[test]
    fn configured_names_are_allowed_on_any_port_or_their_own() {
        let own = hosts(&["c360.example.com", "Hub.Internal:8443", "[fd00::1]:8360"], "0.0.0.0:8360");
        assert!(host(&own, "c360.example.com") && host(&own, "c360.example.com:8360"));
        assert!(host(&own, "hub.internal:8443") && !host(&own, "hub.internal:8360"));
        assert!(host(&own, "[fd00::1]:8360") && host(&own, "localhost:8360"));
        assert!(!host(&own, "0.0.0.0:8360"), "no one addresses the unspecified address");
        assert!(!host(&own, "evil.c360.example.com"));
        let address = hosts(&[], "10.0.0.5:8360");
        assert!(host(&address, "10.0.0.5:8360") && !host(&address, "localhost:8360"));
        for bad in ["https://c360.example.com", "c360.example.com/", "*", "", "a:b", "[::1"] {
            let error = AllowedHosts::new(&[bad.to_owned()], "127.0.0.1:1".parse().expect("address"));
            assert!(error.is_err(), "{bad}");
        }
    }

    #[test]
    fn an_origin_must_be_one_of_the_hubs_names() {
        let own = hosts(&["c360.example.com"], "127.0.0.1:8360");
        assert!(own.allows_origin(&HeaderMap::new()), "no Origin: not a browser");
        for allowed in ["http://127.0.0.1:8360", "http://localhost:8360", "https://c360.example.com"] {
            assert!(origin(&own, allowed), "{allowed}");
        }
        for refused in [
            "http://attacker.example:8360",
            "http://localhost:8361",
            "http://localhost",
            "null",
            "file://",
            "ws://localhost:8360",
            "http://localhost:8360/path",
        ] {
            assert!(!origin(&own, refused), "{refused}");
        }
    }
}

//! The client's address, for per-address login limits and logs. Behind a load balancer every
//! request comes from the balancer, so the address it forwards must be used — but only when the
//! direct peer is one of the configured trusted proxies; anyone else could write any address
//! into a header. `Forwarded` (RFC 7239) is read when present, else `X-Forwarded-For`; the
//! client is the right-most address in the chain that is not itself a trusted proxy.

use axum::http::HeaderMap;
use ipnet::IpNet;
use std::net::{IpAddr, SocketAddr};

/// The proxies whose forwarding headers are believed.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    pub fn new(nets: Vec<IpNet>) -> TrustedProxies {
        TrustedProxies(nets)
    }

    /// Parses a list of addresses or CIDR networks (`10.0.0.0/8`, `127.0.0.1`, `::1`).
    pub fn parse<'a>(items: impl IntoIterator<Item = &'a str>) -> Result<TrustedProxies, String> {
        let mut nets = Vec::new();
        for item in items {
            let item = item.trim();
            if item.is_empty() {
                continue;
            }
            let net = match item.parse::<IpNet>() {
                Ok(n) => n,
                Err(_) => item.parse::<IpAddr>().map(IpNet::from).map_err(|_| {
                    format!(
                        "trusted proxy '{item}' is not an IP address or a network like 10.0.0.0/8"
                    )
                })?,
            };
            nets.push(net);
        }
        Ok(TrustedProxies(nets))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.0.iter().any(|n| n.contains(&ip))
    }

    /// Whether a trusted proxy says the request reached it over TLS (`X-Forwarded-Proto:
    /// https`); a header from anyone else is not believed.
    pub fn forwarded_https(&self, peer: SocketAddr, headers: &HeaderMap) -> bool {
        self.trusts(canonical(peer.ip()))
            && headers
                .get("x-forwarded-proto")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.split(',').next())
                .is_some_and(|p| p.trim().eq_ignore_ascii_case("https"))
    }

    /// The client address of a request that arrived from `peer` with `headers`.
    pub fn client(&self, peer: SocketAddr, headers: &HeaderMap) -> IpAddr {
        let peer = canonical(peer.ip());
        if !self.trusts(peer) {
            return peer;
        }
        let chain = forwarded_for(headers).or_else(|| x_forwarded_for(headers));
        let Some(chain) = chain else {
            return peer;
        };
        // Walk from the nearest hop outwards; the first address not a trusted proxy is the
        // client. A hop that does not parse ends the walk: beyond it, nothing is vouched for.
        let mut client = peer;
        for hop in chain.iter().rev() {
            match hop {
                Some(ip) => {
                    client = canonical(*ip);
                    if !self.trusts(client) {
                        return client;
                    }
                }
                None => return client,
            }
        }
        client
    }
}

/// IPv4 addresses written as IPv6 (`::ffff:10.0.0.1`) compare as IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// Every hop of every `X-Forwarded-For` header, in order; `None` for a hop that does not parse.
fn x_forwarded_for(headers: &HeaderMap) -> Option<Vec<Option<IpAddr>>> {
    let mut hops = Vec::new();
    for v in headers.get_all("x-forwarded-for") {
        let Ok(text) = v.to_str() else {
            hops.push(None);
            continue;
        };
        hops.extend(text.split(',').map(|h| parse_hop(h.trim())));
    }
    (!hops.is_empty()).then_some(hops)
}

/// The `for=` parameter of every element of every `Forwarded` header, in order.
fn forwarded_for(headers: &HeaderMap) -> Option<Vec<Option<IpAddr>>> {
    let mut hops = Vec::new();
    for v in headers.get_all("forwarded") {
        let Ok(text) = v.to_str() else {
            hops.push(None);
            continue;
        };
        for element in text.split(',') {
            let value = element.split(';').find_map(|pair| {
                let (k, v) = pair.trim().split_once('=')?;
                k.trim().eq_ignore_ascii_case("for").then(|| v.trim())
            });
            hops.push(value.and_then(|v| parse_hop(v.trim_matches('"'))));
        }
    }
    (!hops.is_empty()).then_some(hops)
}

/// An address as proxies write it: `1.2.3.4`, `1.2.3.4:5678`, `2001:db8::1`, `[2001:db8::1]:80`.
fn parse_hop(s: &str) -> Option<IpAddr> {
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Ok(sa) = s.parse::<SocketAddr>() {
        return Some(sa.ip());
    }
    s.strip_prefix('[')
        .and_then(|r| r.split_once(']'))
        .and_then(|(ip, _)| ip.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    fn peer(s: &str) -> SocketAddr {
        format!("{s}:40000").parse().unwrap()
    }

    #[test]
    fn headers_from_an_untrusted_peer_are_ignored() {
        let t = TrustedProxies::parse(["10.0.0.0/8"]).unwrap();
        let h = headers(&[("x-forwarded-for", "1.2.3.4")]);
        assert_eq!(t.client(peer("192.0.2.7"), &h).to_string(), "192.0.2.7");
        let none = TrustedProxies::default();
        assert_eq!(none.client(peer("10.0.0.1"), &h).to_string(), "10.0.0.1");
    }

    #[test]
    fn the_rightmost_untrusted_hop_is_the_client() {
        let t = TrustedProxies::parse(["10.0.0.0/8", "127.0.0.1"]).unwrap();
        // A client that forges a first hop does not escape: the balancer appended the real one.
        let h = headers(&[("x-forwarded-for", "6.6.6.6, 203.0.113.9, 10.0.0.2")]);
        assert_eq!(t.client(peer("127.0.0.1"), &h).to_string(), "203.0.113.9");
        let h = headers(&[(
            "forwarded",
            "for=\"[2001:db8::7]:4711\";proto=https, for=10.1.1.1",
        )]);
        assert_eq!(t.client(peer("10.0.0.1"), &h).to_string(), "2001:db8::7");
        let h = headers(&[("x-forwarded-for", "garbage, 203.0.113.9")]);
        assert_eq!(t.client(peer("10.0.0.1"), &h).to_string(), "203.0.113.9");
        let h = headers(&[("x-forwarded-for", "10.0.0.3")]);
        assert_eq!(t.client(peer("10.0.0.1"), &h).to_string(), "10.0.0.3");
    }

    #[test]
    fn bad_configuration_is_named() {
        let e = TrustedProxies::parse(["10.0.0.0/8", "proxy.local"]).unwrap_err();
        assert!(e.contains("proxy.local"), "{e}");
    }
}

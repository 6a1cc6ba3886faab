//! The client's address behind load balancers: the peer address, unless the peer is a trusted
//! proxy, in which case `X-Forwarded-For` is read from the right, skipping trusted hops. Entries
//! left of the first untrusted hop were written by the client and are never believed, so a client
//! cannot choose its own address (and escape its per-IP rate limit) by sending the header.

use std::net::IpAddr;

use http::HeaderMap;
use ipnet::IpNet;

/// The networks whose `X-Forwarded-For` is believed. Empty (the default): none, the peer address
/// is the client.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

/// A configured proxy that is neither an IP address nor a CIDR network.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an IP address or a CIDR network (e.g. 10.0.0.0/8)")]
pub struct BadProxy(pub String);

impl TrustedProxies {
    /// Trusts `proxies`: addresses (`10.0.0.7`) or networks (`10.0.0.0/8`, `fd00::/8`).
    pub fn new(proxies: &[String]) -> Result<Self, BadProxy> {
        proxies
            .iter()
            .map(|p| {
                p.parse::<IpNet>()
                    .or_else(|_| p.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| BadProxy(p.clone()))
            })
            .collect::<Result<_, _>>()
            .map(Self)
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.0.iter().any(|net| net.contains(&ip))
    }

    /// The client address of a request that arrived from `peer` with `headers`.
    pub fn client_ip(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let mut client = canonical(peer);
        if !self.trusts(client) {
            return client;
        }
        // Every X-Forwarded-For header, in order, as one comma-separated list, read from the
        // right: each hop appends the address it received the request from.
        let hops: Vec<&str> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .collect();
        for hop in hops.iter().rev() {
            match hop.parse::<IpAddr>() {
                Ok(ip) => {
                    client = canonical(ip);
                    if !self.trusts(client) {
                        break;
                    }
                }
                // Garbage in the chain: the last address a trusted hop vouched for stands.
                Err(_) => break,
            }
        }
        client
    }
}

/// IPv4-mapped IPv6 addresses (`::ffff:10.0.0.1`, as a dual-stack listener reports IPv4 peers)
/// compare as the IPv4 address they carry.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn trusted(nets: &[&str]) -> TrustedProxies {
        TrustedProxies::new(&nets.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    fn xff(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append("x-forwarded-for", v.parse().unwrap());
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn without_trusted_proxies_the_header_is_ignored() {
        let none = TrustedProxies::default();
        assert_eq!(
            none.client_ip(ip("203.0.113.9"), &xff(&["198.51.100.1"])),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn a_trusted_proxy_is_looked_through() {
        let lb = trusted(&["10.0.0.0/8"]);
        assert_eq!(
            lb.client_ip(ip("10.0.0.2"), &xff(&["198.51.100.1"])),
            ip("198.51.100.1")
        );
        // Two trusted hops, then the client.
        assert_eq!(
            lb.client_ip(ip("10.0.0.2"), &xff(&["198.51.100.1, 10.1.1.1"])),
            ip("198.51.100.1")
        );
        // Several headers form one list.
        assert_eq!(
            lb.client_ip(ip("10.0.0.2"), &xff(&["198.51.100.1", "10.1.1.1"])),
            ip("198.51.100.1")
        );
    }

    #[test]
    fn a_client_cannot_choose_its_address() {
        let lb = trusted(&["10.0.0.0/8"]);
        // The client sent "1.2.3.4"; the balancer appended the address it saw.
        assert_eq!(
            lb.client_ip(ip("10.0.0.2"), &xff(&["1.2.3.4, 198.51.100.7"])),
            ip("198.51.100.7")
        );
        // Garbage stops the walk at the last vouched-for address.
        assert_eq!(
            lb.client_ip(ip("10.0.0.2"), &xff(&["198.51.100.7, bogus"])),
            ip("10.0.0.2")
        );
        // No header: the proxy itself.
        assert_eq!(
            lb.client_ip(ip("10.0.0.2"), &HeaderMap::new()),
            ip("10.0.0.2")
        );
        // An untrusted peer's header is ignored.
        assert_eq!(
            lb.client_ip(ip("198.51.100.7"), &xff(&["1.2.3.4"])),
            ip("198.51.100.7")
        );
    }

    #[test]
    fn single_addresses_and_mapped_ipv4_are_understood() {
        let lb = trusted(&["127.0.0.1", "fd00::/8"]);
        assert_eq!(
            lb.client_ip(ip("::ffff:127.0.0.1"), &xff(&["198.51.100.1"])),
            ip("198.51.100.1")
        );
        assert_eq!(
            lb.client_ip(ip("fd00::1"), &xff(&["2001:db8::5"])),
            ip("2001:db8::5")
        );
        assert!(TrustedProxies::new(&["10.0.0.0/33".to_string()]).is_err());
        assert!(TrustedProxies::new(&["proxy.local".to_string()]).is_err());
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        fn any_ip() -> impl Strategy<Value = IpAddr> {
            prop_oneof![
                any::<[u8; 4]>().prop_map(IpAddr::from),
                any::<[u16; 8]>().prop_map(IpAddr::from),
            ]
        }

        proptest! {
            /// Whatever a client writes into X-Forwarded-For, the address the trusted balancer
            /// appended (the peer it saw) is the one used.
            #[test]
            fn the_client_never_chooses_its_address(
                client_written in "[ -~]{0,80}",
                seen in any_ip(),
            ) {
                let lb = trusted(&["10.0.0.0/8"]);
                let seen = canonical(seen);
                prop_assume!(!lb.trusts(seen));
                let value = format!("{client_written}, {seen}");
                prop_assume!(HeaderValue::from_str(&value).is_ok());
                let mut h = HeaderMap::new();
                h.insert("x-forwarded-for", HeaderValue::from_str(&value).unwrap());
                prop_assert_eq!(lb.client_ip(ip("10.0.0.2"), &h), seen);
            }

            /// An untrusted peer is the client, whatever it sends.
            #[test]
            fn an_untrusted_peer_is_the_client(
                header in "[ -~]{0,80}",
                peer in any_ip(),
            ) {
                let lb = trusted(&["10.0.0.0/8"]);
                let peer = canonical(peer);
                prop_assume!(!lb.trusts(peer));
                let mut h = HeaderMap::new();
                if let Ok(v) = HeaderValue::from_str(&header) {
                    h.insert("x-forwarded-for", v);
                }
                prop_assert_eq!(lb.client_ip(peer, &h), peer);
            }
        }
    }
}

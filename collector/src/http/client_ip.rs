//! Who the client is: the TCP peer, or, behind trusted proxies, the nearest `X-Forwarded-For`
//! hop that is not one of them; and what of that address is stored.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use ipnet::IpNet;

use crate::config::ClientIpMode;

/// Prefix kept of an IPv4 address in `truncated` mode.
pub const TRUNCATED_V4_PREFIX: u8 = 24;
/// Prefix kept of an IPv6 address in `truncated` mode.
pub const TRUNCATED_V6_PREFIX: u8 = 48;

fn trusted(ip: IpAddr, proxies: &[IpNet]) -> bool {
    proxies.iter().any(|net| net.contains(&ip))
}

/// One `X-Forwarded-For` entry as an address: a bare IP, or an IP with a port
/// (`203.0.113.9:4711`, `[2001:db8::1]:4711`), as some proxies write it. Anything else is `None`.
fn parse_hop(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim();
    entry
        .parse::<IpAddr>()
        .or_else(|_| entry.parse::<SocketAddr>().map(|s| s.ip()))
        .ok()
        .map(|ip| ip.to_canonical())
}

/// The client's address. `forwarded_for` holds the `X-Forwarded-For` values in header order
/// (several header lines count as one list joined by commas).
///
/// The header is read only when the TCP peer is a trusted proxy, from the right: each trusted
/// hop passes the walk on to the address it received from; the first hop that is not trusted is
/// the client. An entry that is not an IP address ends the walk, and the client is then the
/// last trusted hop reached: whoever wrote the junk is past the chain we can vouch for, and
/// only a trusted proxy's own word can put junk there (a client's own header is always to the
/// left of the address its first proxy appends). If every hop is trusted, the leftmost is it.
/// IPv4-mapped IPv6 addresses (`::ffff:192.0.2.1`) are taken as the IPv4 address.
pub fn resolve(peer: Option<IpAddr>, forwarded_for: &[&str], proxies: &[IpNet]) -> Option<IpAddr> {
    let mut client = peer?.to_canonical();
    if !trusted(client, proxies) {
        return Some(client);
    }
    let hops = forwarded_for.iter().rev().flat_map(|v| v.rsplit(','));
    for hop in hops {
        let Some(ip) = parse_hop(hop) else {
            break;
        };
        client = ip;
        if !trusted(ip, proxies) {
            break;
        }
    }
    Some(client)
}

/// The network address of `ip`'s /24 (IPv4) or /48 (IPv6).
pub fn truncate(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V4(v4) => {
            let mask = u32::MAX << (32 - TRUNCATED_V4_PREFIX);
            IpAddr::V4(Ipv4Addr::from(u32::from(v4) & mask))
        }
        IpAddr::V6(v6) => {
            let mask = u128::MAX << (128 - TRUNCATED_V6_PREFIX);
            IpAddr::V6(Ipv6Addr::from(u128::from(v6) & mask))
        }
    }
}

/// What is stored for a client at `ip` (`None`: unknown, stored as empty).
pub fn stored(ip: Option<IpAddr>, mode: ClientIpMode) -> String {
    match (ip, mode) {
        (None, _) | (_, ClientIpMode::None) => String::new(),
        (Some(ip), ClientIpMode::Full) => ip.to_string(),
        (Some(ip), ClientIpMode::Truncated) => truncate(ip).to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|n| n.parse().unwrap()).collect()
    }

    #[test]
    fn truncation_keeps_the_v4_slash_24_and_the_v6_slash_48() {
        assert_eq!(truncate(ip("203.0.113.77")), ip("203.0.113.0"));
        assert_eq!(
            truncate(ip("2001:db8:abcd:12:34::1")),
            ip("2001:db8:abcd::")
        );
        assert_eq!(truncate(ip("::ffff:198.51.100.200")), ip("198.51.100.0"));
        assert_eq!(
            stored(Some(ip("203.0.113.77")), ClientIpMode::Truncated),
            "203.0.113.0"
        );
        assert_eq!(
            stored(Some(ip("203.0.113.77")), ClientIpMode::Full),
            "203.0.113.77"
        );
        assert_eq!(stored(Some(ip("203.0.113.77")), ClientIpMode::None), "");
        assert_eq!(stored(None, ClientIpMode::Full), "");
    }

    #[test]
    fn forwarded_for_is_ignored_unless_the_peer_is_a_trusted_proxy() {
        let proxies = nets(&["10.0.0.0/8"]);
        let peer = Some(ip("192.0.2.1"));
        assert_eq!(
            resolve(peer, &["198.51.100.1"], &proxies),
            Some(ip("192.0.2.1"))
        );
        assert_eq!(resolve(peer, &["198.51.100.1"], &[]), Some(ip("192.0.2.1")));
        assert_eq!(resolve(None, &["198.51.100.1"], &proxies), None);
    }

    #[test]
    fn the_client_is_the_rightmost_hop_that_is_not_a_trusted_proxy() {
        let proxies = nets(&["10.0.0.0/8", "2001:db8:ffff::/48"]);
        let peer = Some(ip("10.0.0.2"));
        // The client forged the leftmost entry; its first proxy appended the real address.
        assert_eq!(
            resolve(peer, &["6.6.6.6, 198.51.100.9, 10.1.1.1"], &proxies),
            Some(ip("198.51.100.9"))
        );
        // Two header lines are one list, in order.
        assert_eq!(
            resolve(peer, &["6.6.6.6", "198.51.100.9 , 10.1.1.1"], &proxies),
            Some(ip("198.51.100.9"))
        );
        // Ports and brackets as some proxies write them; IPv4-mapped addresses as IPv4.
        assert_eq!(
            resolve(peer, &["[2001:db8::7]:443, 10.1.1.1:80"], &proxies),
            Some(ip("2001:db8::7"))
        );
        assert_eq!(
            resolve(
                Some(ip("::ffff:10.0.0.2")),
                &["::ffff:198.51.100.9"],
                &proxies
            ),
            Some(ip("198.51.100.9"))
        );
        assert_eq!(
            resolve(Some(ip("2001:db8:ffff::1")), &["2001:db8:1::5"], &proxies),
            Some(ip("2001:db8:1::5"))
        );
    }

    #[test]
    fn junk_ends_the_walk_at_the_last_trusted_hop() {
        let proxies = nets(&["10.0.0.0/8"]);
        let peer = Some(ip("10.0.0.2"));
        assert_eq!(
            resolve(peer, &["198.51.100.9, unknown, 10.1.1.1"], &proxies),
            Some(ip("10.1.1.1"))
        );
        assert_eq!(
            resolve(peer, &["198.51.100.9,,"], &proxies),
            Some(ip("10.0.0.2"))
        );
        assert_eq!(resolve(peer, &[], &proxies), Some(ip("10.0.0.2")));
        // Every hop trusted: the leftmost one is as far as the chain goes.
        assert_eq!(
            resolve(peer, &["10.9.9.9, 10.1.1.1"], &proxies),
            Some(ip("10.9.9.9"))
        );
    }
}

//! The names and addresses this machine answers to, for the certificate and the join link.

use std::net::IpAddr;

/// The machine's host name, if it has a usable one.
pub fn host_name() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_ascii_lowercase())
        .filter(|h| is_dns_name(h))
}

/// Every address of every interface, loopback included. No interfaces readable (a locked-down
/// container) leaves the loopback addresses.
pub fn local_addresses() -> Vec<IpAddr> {
    let mut addresses: Vec<IpAddr> = match if_addrs::get_if_addrs() {
        Ok(interfaces) => interfaces.into_iter().map(|i| i.ip()).collect(),
        Err(e) => {
            tracing::debug!(error = %e, "cannot list network interfaces");
            Vec::new()
        }
    };
    addresses.extend([
        IpAddr::from([127, 0, 0, 1]),
        IpAddr::from(std::net::Ipv6Addr::LOCALHOST),
    ]);
    addresses.sort();
    addresses.dedup();
    addresses
}

/// The address a phone on the office network can reach: a private IPv4 address if the
/// machine has one (any phone resolves an address; not every one resolves `.local` names).
pub fn lan_address() -> Option<IpAddr> {
    let v4 = |ip: &IpAddr| match ip {
        IpAddr::V4(v4) => Some(*v4),
        IpAddr::V6(_) => None,
    };
    let candidates: Vec<_> = local_addresses().iter().filter_map(v4).collect();
    let usable = |a: &&std::net::Ipv4Addr| !a.is_loopback() && !a.is_link_local();
    candidates
        .iter()
        .filter(usable)
        .find(|a| a.is_private())
        .or_else(|| candidates.iter().find(usable))
        .map(|a| IpAddr::V4(*a))
}

/// What the server certificate covers: `localhost`, the host name with and without `.local`,
/// the mDNS name, and every local address. Sorted, so two lists compare equal when the
/// machine has not changed.
pub fn certificate_names(mdns_name: Option<&str>) -> Vec<String> {
    let mut names = vec!["localhost".to_owned()];
    if let Some(host) = host_name() {
        let short = host.split('.').next().unwrap_or(&host).to_owned();
        names.push(format!("{short}.local"));
        names.push(short);
        names.push(host);
    }
    if let Some(mdns) = mdns_name {
        names.push(format!("{mdns}.local"));
    }
    names.extend(local_addresses().iter().map(IpAddr::to_string));
    names.sort();
    names.dedup();
    names
}

/// Letters, digits, dots and dashes: what a certificate and a URL can carry unescaped.
fn is_dns_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificate_names_cover_localhost_loopback_and_the_mdns_name() {
        let names = certificate_names(Some("office-chat"));
        for expected in ["localhost", "127.0.0.1", "::1", "office-chat.local"] {
            assert!(
                names.contains(&expected.to_owned()),
                "{expected} in {names:?}"
            );
        }
        assert_eq!(
            names,
            certificate_names(Some("office-chat")),
            "stable order"
        );
    }

    #[test]
    fn host_names_with_odd_characters_are_not_used() {
        assert!(is_dns_name("box-1.example.com"));
        assert!(!is_dns_name("my box"));
        assert!(!is_dns_name("a..b"));
        assert!(!is_dns_name(""));
    }
}

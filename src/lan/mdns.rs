//! Announces the server on the LAN by mDNS (`NAME.local`, `_https._tcp` or `_http._tcp`), so
//! browsers and phones find it without an address. Best effort: a machine without a multicast
//! interface (a container, a locked-down network) logs why and serves anyway.

use mdns_sd::{ServiceDaemon, ServiceInfo};

/// The running announcement; dropping it says goodbye on the network.
pub struct Announcement {
    daemon: ServiceDaemon,
}

/// Starts announcing `name.local` on every interface, or logs why it cannot.
pub fn announce(name: &str, port: u16, tls: bool) -> Option<Announcement> {
    match start(name, port, tls) {
        Ok(announcement) => {
            tracing::info!("announced on the LAN as {name}.local (turn off with --no-mdns)");
            Some(announcement)
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot announce the server by mDNS; serving anyway");
            None
        }
    }
}

fn start(name: &str, port: u16, tls: bool) -> Result<Announcement, mdns_sd::Error> {
    let daemon = ServiceDaemon::new()?;
    let service_type = if tls {
        "_https._tcp.local."
    } else {
        "_http._tcp.local."
    };
    let host = format!("{name}.local.");
    // No addresses given: the daemon answers with each interface's own, and follows changes.
    let service = ServiceInfo::new(service_type, name, &host, "", port, &[("path", "/")][..])?
        .enable_addr_auto();
    if let Err(e) = daemon.register(service) {
        let _ = daemon.shutdown();
        return Err(e);
    }
    Ok(Announcement { daemon })
}

impl Drop for Announcement {
    fn drop(&mut self) {
        let _ = self.daemon.shutdown();
    }
}

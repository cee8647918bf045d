//! The addresses to give people: the one printed at start, the one in the QR code for
//! phones, and the one a browser on this machine opens.

use std::net::{IpAddr, SocketAddr};

use qrcode::QrCode;
use qrcode::render::{svg, unicode};

use super::names;

/// Where the server listens and how, which is all the links are made from.
#[derive(Debug, Clone)]
pub struct Addresses {
    pub listen: SocketAddr,
    pub tls: bool,
}

impl Addresses {
    /// The link in the start-up line: the machine's name when listening on every interface
    /// (what colleagues can type), else the address listened on.
    pub fn open_url(&self) -> String {
        match names::host_name().filter(|_| self.listen.ip().is_unspecified()) {
            Some(host) => self.url(&host),
            None if self.listen.ip().is_unspecified() => self.url("localhost"),
            None => self.url(&host_of(self.listen.ip())),
        }
    }

    /// The link in the QR code: a LAN address when listening on every interface, because a
    /// phone reaches an address without help and the certificate covers it.
    pub fn join_url(&self) -> String {
        if !self.listen.ip().is_unspecified() {
            return self.url(&host_of(self.listen.ip()));
        }
        match names::lan_address() {
            Some(ip) => self.url(&host_of(ip)),
            None => self.open_url(),
        }
    }

    /// The link for a browser on this machine.
    pub fn local_url(&self) -> String {
        if self.listen.ip().is_unspecified() {
            self.url("localhost")
        } else {
            self.url(&host_of(self.listen.ip()))
        }
    }

    fn url(&self, host: &str) -> String {
        let (scheme, default_port) = if self.tls {
            ("https", 443)
        } else {
            ("http", 80)
        };
        match self.listen.port() {
            port if port == default_port => format!("{scheme}://{host}/"),
            port => format!("{scheme}://{host}:{port}/"),
        }
    }
}

fn host_of(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("[{v6}]"),
    }
}

/// The QR code as an SVG document, for the admin page.
pub fn qr_svg(url: &str) -> Option<String> {
    let code = QrCode::new(url.as_bytes()).ok()?;
    Some(
        code.render::<svg::Color<'_>>()
            .min_dimensions(240, 240)
            .dark_color(svg::Color("#000000"))
            .light_color(svg::Color("#ffffff"))
            .build(),
    )
}

/// The QR code in unicode half blocks (two rows per line), dark on light so phones read it
/// on dark terminals too.
pub fn qr_terminal(url: &str) -> Option<String> {
    let code = QrCode::new(url.as_bytes()).ok()?;
    Some(
        code.render::<unicode::Dense1x2>()
            .dark_color(unicode::Dense1x2::Light)
            .light_color(unicode::Dense1x2::Dark)
            .build(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(listen: &str, tls: bool) -> Addresses {
        Addresses {
            listen: listen.parse().expect("address"),
            tls,
        }
    }

    #[test]
    fn links_use_the_scheme_and_leave_out_default_ports() {
        assert_eq!(
            at("10.0.0.5:8080", true).join_url(),
            "https://10.0.0.5:8080/"
        );
        assert_eq!(at("10.0.0.5:443", true).join_url(), "https://10.0.0.5/");
        assert_eq!(at("10.0.0.5:80", false).local_url(), "http://10.0.0.5/");
        assert_eq!(at("[::1]:8080", false).local_url(), "http://[::1]:8080/");
        assert_eq!(
            at("0.0.0.0:8443", true).local_url(),
            "https://localhost:8443/"
        );
    }

    #[test]
    fn qr_codes_render_as_svg_and_text() {
        let svg = qr_svg("https://10.0.0.5:8080/").expect("svg");
        assert!(svg.contains("<svg") && svg.contains("</svg>"), "{svg}");
        let text = qr_terminal("https://10.0.0.5:8080/").expect("text");
        assert!(text.lines().count() > 10 && text.contains('█'), "{text}");
    }
}

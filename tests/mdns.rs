//! mDNS: the server announces itself as `NAME.local` on the LAN, and a machine without a
//! multicast interface serves anyway. Each story runs in a network namespace of its own (made
//! with `unshare`), so nothing is ever multicast on the machine's real network: the outer test
//! re-runs this test binary inside the namespace, where the inner test does the work.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

/// Set inside the namespace, so the inner tests know they may listen on every interface.
const INSIDE: &str = "CONFAB_TEST_IN_NETNS";

/// Runs `inner` (an ignored test of this file) in a new user and network namespace. With
/// `lan`, the namespace has a veth pair (two multicast interfaces joined to each other);
/// without, only loopback.
fn run_isolated(inner: &str, lan: bool) {
    let setup = if lan {
        "ip link set lo up && ip link add v0 type veth peer name v1 \
         && ip addr add 10.99.0.1/24 dev v0 && ip addr add 10.99.0.2/24 dev v1 \
         && ip link set v0 up && ip link set v1 up"
    } else {
        "ip link set lo up"
    };
    let test_binary = std::env::current_exe().expect("this test binary");
    let output = Command::new("unshare")
        .args(["--user", "--map-root-user", "--net", "sh", "-c"])
        .arg(format!(
            "{setup} && exec \"$0\" --exact {inner} --ignored --nocapture"
        ))
        .arg(&test_binary)
        .env(INSIDE, "1")
        .output()
        .expect("run unshare (util-linux) to make a private network namespace");
    let log = format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success(),
        "{inner} in a private network failed:\n{log}"
    );
    assert!(log.contains("1 passed"), "{inner} did not run:\n{log}");
}

#[test]
fn the_server_is_announced_as_its_mdns_name() {
    run_isolated("inner_announced_as_its_mdns_name", true);
}

#[test]
fn without_a_multicast_interface_the_server_serves_anyway() {
    run_isolated("inner_serves_without_multicast", false);
}

#[test]
#[ignore = "runs inside a private network namespace, started by the_server_is_announced_as_its_mdns_name"]
fn inner_announced_as_its_mdns_name() {
    assert!(
        std::env::var_os(INSIDE).is_some(),
        "only inside a private network namespace"
    );
    let server = TestServer::start_with(
        &["--listen", "0.0.0.0:0", "--mdns-name", "office-chat"],
        None,
    );
    assert!(server.wait_for_log(
        "announced on the LAN as office-chat.local",
        Duration::from_secs(5)
    ));

    let browser = mdns_sd::ServiceDaemon::new().expect("an mDNS browser");
    let events = browser.browse("_http._tcp.local.").expect("browse");
    let deadline = Instant::now() + Duration::from_secs(15);
    let found = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match events.recv_timeout(left) {
            Ok(mdns_sd::ServiceEvent::ServiceResolved(service)) => break service,
            Ok(_) => continue,
            Err(e) => panic!("office-chat was not found by mDNS within 15 s: {e}"),
        }
    };
    assert_eq!(found.get_hostname(), "office-chat.local.");
    assert_eq!(found.get_port(), server.addr().port());
    assert!(
        !found.get_addresses_v4().is_empty(),
        "announced with an address"
    );
    let _ = browser.shutdown();
}

#[tokio::test]
#[ignore = "runs inside a private network namespace, started by without_a_multicast_interface_the_server_serves_anyway"]
async fn inner_serves_without_multicast() {
    assert!(
        std::env::var_os(INSIDE).is_some(),
        "only inside a private network namespace"
    );
    let server = TestServer::start_with(&["--listen", "0.0.0.0:0"], None);
    let (status, body) = send(http().get(server.url("/healthz"))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

//! Being found on the office network: the machine's names and addresses, the mDNS
//! announcement, the join link and its QR code, and opening a browser on a desktop start.

pub mod desktop;
pub mod join;
pub mod mdns;
pub mod names;

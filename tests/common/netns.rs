//! Network faults for real: a network namespace of the server's own
//! (`ip netns`, Debian's iproute2; root only, as in CI), and one veth pair per
//! station between it and the machine. Pulling a station's cable is setting the far
//! end of its pair down: its packets vanish without a word (no reset, no refusal),
//! as when a switch loses power, and the other stations keep their links.
//!
//! A test that needs it fails loudly when it cannot make it: it never skips.

#![allow(dead_code)] // each test binary uses a part

use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

/// Numbers the namespaces and links of this process (tests run in parallel).
static NEXT: AtomicU32 = AtomicU32::new(0);

/// Runs `ip args`; panics with its output when it fails.
fn ip(args: &[&str]) {
    let out = Command::new("ip")
        .args(args)
        .output()
        .expect("`ip` runs (install Debian's iproute2; .ci/run does)");
    assert!(
        out.status.success(),
        "ip {}: {} (network namespaces need root)",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr).trim()
    );
}

/// A network namespace of its own, removed (with its links) on drop.
pub struct ServerNet {
    name: String,
    /// This namespace's number: its links' addresses are `10.<200 + it>.<link>.x`.
    octet: u32,
    links: u32,
}

impl ServerNet {
    /// A new namespace with its loopback up.
    pub fn new() -> Self {
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        // Unique on the machine: this process's id and the count (names and
        // interfaces are the machine's, shared by every test binary running).
        let tag = (std::process::id() % 10_000) * 10 + n % 10;
        let name = format!("punctum-{tag}");
        ip(&["netns", "add", &name]);
        ip(&["netns", "exec", &name, "ip", "link", "set", "lo", "up"]);
        Self {
            name,
            octet: tag % 50,
            links: 0,
        }
    }

    /// The namespace's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A new link (veth pair) between the machine and the namespace, up.
    pub fn link(&mut self) -> Link {
        self.links += 1;
        let k = self.links;
        assert!(k < 64, "at most 63 links");
        // Interface names: at most 15 bytes.
        let host_if = format!("pn{}h{k}", self.name.trim_start_matches("punctum-"));
        let ns_if = format!("pn{}n{k}", self.name.trim_start_matches("punctum-"));
        let subnet = format!("10.{}.{}", 200 + self.octet, k * 4);
        let machine_addr = format!("{subnet}.1");
        let server_ip = format!("{subnet}.2");
        ip(&[
            "link", "add", &host_if, "type", "veth", "peer", "name", &ns_if,
        ]);
        ip(&["link", "set", &ns_if, "netns", &self.name]);
        ip(&[
            "addr",
            "add",
            &format!("{machine_addr}/30"),
            "dev",
            &host_if,
        ]);
        ip(&["link", "set", &host_if, "up"]);
        let ns = self.name.clone();
        ip(&[
            "netns",
            "exec",
            &ns,
            "ip",
            "addr",
            "add",
            &format!("{server_ip}/30"),
            "dev",
            &ns_if,
        ]);
        ip(&["netns", "exec", &ns, "ip", "link", "set", &ns_if, "up"]);
        Link {
            ns,
            ns_if,
            server_ip,
        }
    }
}

impl Drop for ServerNet {
    fn drop(&mut self) {
        // Deleting the namespace deletes the far ends, and with them each pair.
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// One station's cable to the server's namespace.
pub struct Link {
    ns: String,
    ns_if: String,
    server_ip: String,
}

impl Link {
    /// The server's address on this link.
    pub fn server_ip(&self) -> &str {
        &self.server_ip
    }

    /// Pulls the cable: the far end goes down, packets vanish silently.
    pub fn cut(&self) {
        self.far_end("down");
    }

    /// Plugs it back.
    pub fn restore(&self) {
        self.far_end("up");
    }

    fn far_end(&self, state: &str) {
        ip(&[
            "netns",
            "exec",
            &self.ns,
            "ip",
            "link",
            "set",
            &self.ns_if,
            state,
        ]);
    }
}

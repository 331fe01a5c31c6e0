//! Free TCP ports on 127.0.0.1 for listeners that start later (nodes of a local network).
//!
//! Ports are drawn at random below the kernel's ephemeral range, because a port the kernel
//! hands out can be taken by any outgoing connection before the node binds it. A port is
//! also reserved with a marker file for [`RESERVATION`], so that several networks generated
//! at the same time (parallel tests, two `raftnet up`) never draw the same port. Markers live
//! in a private directory of the user: other users can neither read nor plant them.

use std::path::PathBuf;
use std::time::Duration;

/// How long a drawn port stays reserved for the process that drew it.
const RESERVATION: Duration = Duration::from_secs(600);

/// The user's own marker directory (`$TMPDIR/raftnet-ports-UID`, mode 0700). None when it
/// cannot be made or is not ours and private (another user made it first, or it is a
/// symlink): then markers are skipped and the bind check alone guards the draw.
fn reservations() -> Option<PathBuf> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt};
    let uid = std::fs::metadata("/proc/self").ok()?.uid();
    let dir = std::env::temp_dir().join(format!("raftnet-ports-{uid}"));
    let _ = std::fs::DirBuilder::new().mode(0o700).create(&dir);
    let meta = std::fs::symlink_metadata(&dir).ok()?;
    (meta.is_dir() && meta.uid() == uid && meta.mode() & 0o077 == 0).then_some(dir)
}

/// Reserves `port` unless another process reserved it recently.
fn reserve(port: u16) -> bool {
    let Some(dir) = reservations() else {
        return true;
    };
    let marker = dir.join(port.to_string());
    let fresh = std::fs::metadata(&marker)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())
        .is_some_and(|age| age < RESERVATION);
    if fresh {
        return false;
    }
    let _ = std::fs::remove_file(&marker);
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&marker)
        .is_ok()
}

pub fn free_ports(n: usize) -> anyhow::Result<Vec<u16>> {
    let ephemeral_low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    // Where the ephemeral range starts low, fall back to a fixed range (clashes stay possible).
    let (low, high) = if ephemeral_low >= 20_000 {
        (10_000u16, ephemeral_low)
    } else {
        (20_000, 30_000)
    };
    let rng = ring::rand::SystemRandom::new();
    let mut ports = Vec::with_capacity(n);
    let mut held = Vec::with_capacity(n);
    for _ in 0..n * 200 {
        if ports.len() == n {
            break;
        }
        let mut b = [0u8; 2];
        ring::rand::SecureRandom::fill(&rng, &mut b)
            .map_err(|_| anyhow::anyhow!("no randomness"))?;
        let port = low + u16::from_be_bytes(b) % (high - low);
        if ports.contains(&port) {
            continue;
        }
        // Held until all are chosen, so that the same port is not picked twice.
        if let Ok(l) = std::net::TcpListener::bind(("127.0.0.1", port)) {
            if reserve(port) {
                held.push(l);
                ports.push(port);
            }
        }
    }
    anyhow::ensure!(
        ports.len() == n,
        "could not find {n} free ports on 127.0.0.1"
    );
    Ok(ports)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_drawn_twice_in_a_row_do_not_overlap() {
        let a = free_ports(50).unwrap();
        let b = free_ports(50).unwrap();
        assert!(a.iter().all(|p| !b.contains(p)));
        assert!(a
            .iter()
            .all(|p| std::net::TcpListener::bind(("127.0.0.1", *p)).is_ok()));
    }

    #[test]
    fn markers_live_in_a_private_directory_of_the_user() {
        use std::os::unix::fs::MetadataExt;
        let dir = reservations().expect("a marker directory");
        let meta = std::fs::symlink_metadata(&dir).unwrap();
        assert_eq!(meta.uid(), std::fs::metadata("/proc/self").unwrap().uid());
        assert_eq!(meta.mode() & 0o777, 0o700, "{}", dir.display());
        let ports = free_ports(2).unwrap();
        assert!(ports.iter().all(|p| dir.join(p.to_string()).exists()));
    }
}

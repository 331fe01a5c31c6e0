//! Node processes that outlive the command that started them (`raftnet up`): started in
//! their own process group with output to a log file, found again through a PID file, and
//! killed only when the PID still runs this node's config (a PID can be reused).

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;

use super::process::node_command;
use super::NodeKind;

/// One node of a local network, as files.
#[derive(Clone, Debug)]
pub struct Daemon {
    pub name: String,
    pub kind: NodeKind,
    pub config: PathBuf,
    pub log: PathBuf,
    pub pid_file: PathBuf,
}

impl Daemon {
    pub fn new(name: &str, kind: NodeKind, config: &Path) -> Self {
        let dir = config.parent().unwrap_or(Path::new("."));
        Self {
            name: name.to_string(),
            kind,
            config: config.to_path_buf(),
            log: dir.join("node.log"),
            pid_file: dir.join("node.pid"),
        }
    }

    /// The PID of the running node, if it runs.
    pub fn pid(&self) -> Option<u32> {
        let pid: u32 = std::fs::read_to_string(&self.pid_file)
            .ok()?
            .trim()
            .parse()
            .ok()?;
        // Ours only if that process runs raftnet-node with this config.
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
        let config = self.config.to_string_lossy();
        let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
        let running = args.iter().any(|a| *a == config.as_bytes())
            && std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                // A zombie (state Z) has exited but was not reaped yet.
                .is_some_and(|s| {
                    !s.rsplit(')')
                        .next()
                        .unwrap_or("")
                        .trim_start()
                        .starts_with('Z')
                });
        running.then_some(pid)
    }

    pub fn is_running(&self) -> bool {
        self.pid().is_some()
    }

    /// Starts the node unless it runs; returns its PID.
    pub fn start(&self, binary: &Path) -> anyhow::Result<u32> {
        if let Some(pid) = self.pid() {
            return Ok(pid);
        }
        let child = node_command(binary, self.kind, &self.config, &self.log)?
            // Its own process group: a Ctrl-C in the terminal of `raftnet up` must not stop it.
            .process_group(0)
            .spawn()
            .with_context(|| format!("cannot start {}", binary.display()))?;
        let pid = child.id();
        std::fs::write(&self.pid_file, pid.to_string())
            .with_context(|| format!("cannot write {}", self.pid_file.display()))?;
        Ok(pid)
    }

    /// SIGKILL, as a crash (like `docker kill`): no shutdown path runs.
    pub fn kill(&self) -> anyhow::Result<bool> {
        self.signal(libc::SIGKILL, Duration::from_secs(5))
    }

    /// SIGTERM, then SIGKILL if it has not stopped within `grace`.
    pub fn terminate(&self, grace: Duration) -> anyhow::Result<bool> {
        if self.signal(libc::SIGTERM, grace)? {
            return Ok(true);
        }
        self.kill()
    }

    /// Sends `sig` and waits up to `wait` for the process to go; Ok(false) if it was not
    /// running.
    fn signal(&self, sig: libc::c_int, wait: Duration) -> anyhow::Result<bool> {
        let Some(pid) = self.pid() else {
            return Ok(false);
        };
        let pid_t = libc::pid_t::try_from(pid)?;
        // SAFETY: kill(2) on a PID checked above to run this node's config.
        unsafe { libc::kill(pid_t, sig) };
        let started = Instant::now();
        while self.pid().is_some() {
            // Reap it if this process started it (`raftnet lab`); harmless otherwise.
            // SAFETY: waitpid(2) with WNOHANG on a PID; no memory is passed.
            unsafe { libc::waitpid(pid_t, std::ptr::null_mut(), libc::WNOHANG) };
            if started.elapsed() > wait {
                return Ok(false);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(true)
    }

    /// When the running process started (for AGE columns).
    pub fn started_at(&self) -> Option<std::time::SystemTime> {
        self.pid()?;
        std::fs::metadata(&self.pid_file).ok()?.modified().ok()
    }
}

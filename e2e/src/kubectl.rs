//! `kubectl`, as a person types it: the lab's user-visible verbs (apply, delete, scale, exec,
//! get) run through it so that the narration shows the very commands to repeat by hand.

use std::process::Stdio;
use std::time::Duration;

use anyhow::{bail, Context};
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

/// How long one kubectl call may take (an exec that invokes a contract waits for the commit).
const CALL_TIMEOUT: Duration = Duration::from_secs(90);

/// kubectl in one namespace.
#[derive(Clone, Debug)]
pub struct Kubectl {
    pub namespace: String,
}

impl Kubectl {
    pub fn new(namespace: &str) -> Self {
        Self {
            namespace: namespace.to_owned(),
        }
    }

    /// The command line as a person would type it (for narration).
    pub fn line(&self, args: &[&str]) -> String {
        format!("kubectl -n {} {}", self.namespace, args.join(" "))
    }

    /// Runs `kubectl -n NS ARGS`; its stdout on success, an error with its stderr otherwise.
    pub async fn run(&self, args: &[&str]) -> anyhow::Result<String> {
        self.run_with_input(args, None).await
    }

    /// Runs kubectl with `input` on its stdin (`apply -f -`).
    pub async fn run_with_input(
        &self,
        args: &[&str],
        input: Option<&str>,
    ) -> anyhow::Result<String> {
        let mut cmd = Command::new("kubectl");
        cmd.arg("-n")
            .arg(&self.namespace)
            .args(args)
            .stdin(if input.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd
            .spawn()
            .context("cannot run kubectl: install it and put it on PATH")?;
        if let (Some(input), Some(mut stdin)) = (input, child.stdin.take()) {
            stdin.write_all(input.as_bytes()).await?;
        }
        let out = tokio::time::timeout(CALL_TIMEOUT, child.wait_with_output())
            .await
            .with_context(|| format!("`{}` took over {CALL_TIMEOUT:?}", self.line(args)))??;
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        if !out.status.success() {
            let stderr = String::from_utf8_lossy(&out.stderr);
            bail!(
                "`{}` failed ({}): {}{}",
                self.line(args),
                out.status,
                stderr.trim(),
                if stdout.trim().is_empty() {
                    String::new()
                } else {
                    format!("\n{}", stdout.trim())
                }
            );
        }
        Ok(stdout)
    }
}

//! Long-running Python drivers (Spark sessions) that a test talks to line by line.

use std::time::Duration;

use anyhow::Context as _;
use serde_json::Value;

/// A Python driver script (`tests/python/<script>`), running: JSON lines out, a line in to go on. Its
/// stderr (Spark's JVM included) goes to a file, shown when something fails.
pub struct Driver {
    child: tokio::process::Child,
    lines: tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
    stderr: tempfile::NamedTempFile,
    _work: tempfile::TempDir,
}

impl Driver {
    pub fn start(script: &str, args: &[String]) -> anyhow::Result<Driver> {
        let script = crate::package_dir().join("python").join(script);
        let stderr = tempfile::NamedTempFile::new()?;
        // Spark's standalone worker (local-cluster) writes its work dir here, not into the
        // venv's pyspark folder.
        let work = tempfile::tempdir()?;
        let mut child = tokio::process::Command::new(crate::engines::venv_python())
            .arg(script)
            .args(args)
            .env("SPARK_WORKER_DIR", work.path())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(stderr.reopen()?)
            .kill_on_drop(true)
            .spawn()?;
        let lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(
            child.stdout.take().context("stdout")?,
        ));
        Ok(Driver { child, lines, stderr, _work: work })
    }

    pub fn stderr_tail(&self) -> String {
        let text = std::fs::read_to_string(self.stderr.path()).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(60)..].join("\n")
    }

    pub async fn next_json(&mut self) -> anyhow::Result<Value> {
        let line = tokio::time::timeout(Duration::from_secs(300), self.lines.next_line()).await;
        match line {
            Ok(Ok(Some(line))) => Ok(serde_json::from_str(&line)?),
            _ => anyhow::bail!("the driver printed nothing more:\n{}", self.stderr_tail()),
        }
    }

    pub async fn say(&mut self, line: &str) -> anyhow::Result<()> {
        use tokio::io::AsyncWriteExt as _;
        let stdin = self.child.stdin.as_mut().context("stdin")?;
        stdin.write_all(format!("{line}\n").as_bytes()).await?;
        Ok(stdin.flush().await?)
    }

    pub async fn finish(mut self) -> anyhow::Result<()> {
        let status = tokio::time::timeout(Duration::from_secs(60), self.child.wait()).await??;
        anyhow::ensure!(status.success(), "the driver: {status}\n{}", self.stderr_tail());
        Ok(())
    }
}

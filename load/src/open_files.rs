//! The tool's own open-file limit, which must exceed the number of streams it holds.
//!
//! **Invariant:** the soft limit is only ever raised, up to the hard limit, never lowered.

use rlimit::Resource;

/// The open-file limits before and after raising.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenFileLimits {
    /// Soft limit the process started with.
    pub soft_before: u64,
    /// Soft limit now.
    pub soft: u64,
    /// Hard limit.
    pub hard: u64,
}

impl OpenFileLimits {
    /// The report line, e.g. `open files: soft 1048576 (was 1024), hard 1048576`.
    pub fn describe(&self) -> String {
        format!(
            "open files: soft {} (was {}), hard {}",
            self.soft, self.soft_before, self.hard
        )
    }
}

/// Raises the soft open-file limit to the hard limit.
///
/// # Errors
///
/// The limits cannot be read or set.
pub fn raise_to_hard_limit() -> std::io::Result<OpenFileLimits> {
    let (soft_before, hard) = Resource::NOFILE.get()?;
    if soft_before < hard {
        Resource::NOFILE.set(hard, hard)?;
    }
    let (soft, hard) = Resource::NOFILE.get()?;
    Ok(OpenFileLimits {
        soft_before,
        soft,
        hard,
    })
}

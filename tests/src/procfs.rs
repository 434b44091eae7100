//! This process's resources as Linux reports them, for the tests and the
//! soak that check nothing leaks.

/// Open file descriptors of this process (entries of `/proc/self/fd`);
/// 0 when it cannot be read.
pub fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count())
}

/// A `kB` field of `/proc/self/status` (`VmRSS`, `VmHWM`), in KiB.
/// `VmRSS` is `/proc/self/statm`'s resident figure without needing the
/// page size.
pub fn status_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

//! Where Docker looks for plugins by default (spec §1.1; checklist 1), as
//! constants shared by the engine side (`plugin-discovery`, which adds the
//! rootless rules) and the plugin side (`plugin-server`, which writes
//! there).

/// The socket directory, on every platform and in rootless mode too
/// (Docker's `defaultSocketsPath`).
pub const DEFAULT_SOCKET_DIR: &str = "/run/docker/plugins";

/// The spec directory Docker reads first on unix, where a plugin writes
/// its `.spec` or `.json` file.
pub const DEFAULT_SPEC_DIR: &str = "/etc/docker/plugins";

/// The spec directories on unix, in priority order (checklist 1).
pub const DEFAULT_SPEC_DIRS: [&str; 2] = [DEFAULT_SPEC_DIR, "/usr/lib/docker/plugins"];

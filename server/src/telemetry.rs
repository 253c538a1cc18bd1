use tracing_subscriber::EnvFilter;

/// Logs to stderr with the given filter (`RUST_LOG` syntax); a bad filter falls back to `info`.
pub fn init(filter: &str) {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|e| {
        eprintln!("ignoring the log filter {filter:?}: {e}; using `info`");
        EnvFilter::new("info")
    });
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_target(false).try_init();
}

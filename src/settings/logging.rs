//! Installs the process's log subscriber, honouring `log_format`.

use tracing_subscriber::EnvFilter;

use super::{Env, LogFormat, SettingsError, LOG_FILTER_ENV};

/// Installs a global `tracing` subscriber writing to stderr: human-readable
/// lines, or one JSON object per line (`log_format = "json"`, with the span
/// fields flattened in). The filter comes from `CAIRN_LOG` in `env` (tracing
/// directives such as `info,cairn=debug`), else `default_filter`.
///
/// Fails when the filter does not parse or a subscriber is already installed.
pub fn init_tracing(
    format: LogFormat,
    env: &Env,
    default_filter: &str,
) -> Result<(), SettingsError> {
    let directives = env.get(LOG_FILTER_ENV).unwrap_or(default_filter);
    let filter = EnvFilter::try_new(directives)
        .map_err(|e| SettingsError::Logging(format!("{LOG_FILTER_ENV}={directives:?}: {e}")))?;
    // Colours only for a person at a terminal, never in collected logs.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    let installed = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init(),
    };
    installed.map_err(|e| SettingsError::Logging(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_filter_is_named() {
        let env: Env = [(LOG_FILTER_ENV, "cairn=loud")].into_iter().collect();
        let err = init_tracing(LogFormat::Json, &env, "info").unwrap_err();
        assert!(err.to_string().contains("CAIRN_LOG"), "{err}");
    }
}

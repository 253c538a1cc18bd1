use clap::Parser;
use tandem::{telemetry, Application, Config};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::parse();
    telemetry::init(&config.log);
    if let Some(tandem::config::Command::Users { action }) = config.command.clone() {
        return tandem::startup::run_users_command(&config, action).await;
    }
    if config.command == Some(tandem::config::Command::Worker) {
        if let Err(e) = tandem::startup::run_worker(config, shutdown_signal()).await {
            tracing::error!(error = %e, "the Tandem worker could not start");
            return Err(e.into());
        }
        return Ok(());
    }
    let app = match Application::build(config).await {
        Ok(app) => app,
        Err(e) => {
            tracing::error!(error = %e, "Tandem could not start");
            return Err(e.into());
        }
    };
    app.run(shutdown_signal()).await?;
    Ok(())
}

/// Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutting down");
}

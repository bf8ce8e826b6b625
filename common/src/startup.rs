//! What every service binary does around its own work: read the configuration, start
//! telemetry and flush the exported spans on the way out; and reach the message broker with
//! every stream of the namespace provisioned.

use crate::messaging::Namespace;
use crate::{Config, nats};
use async_nats::jetstream;
use std::process::ExitCode;

/// Loads the configuration (exit code 2, with the error, when it is invalid), starts the
/// telemetry of `service`, runs `run` with the configuration, and lets the spans still buffered
/// leave before answering its exit code.
pub async fn serve<Fut>(service: &str, run: impl FnOnce(Config) -> Fut) -> ExitCode
where
    Fut: Future<Output = ExitCode>,
{
    let config = match Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    install_tls_provider();
    crate::telemetry::init_service(service, config.log_format, &config.log_filter);
    disable_transparent_huge_pages();
    let code = run(config).await;
    // Exported spans still buffered leave before the process does.
    let _ = tokio::task::spawn_blocking(crate::otel::shutdown).await;
    code
}

/// Turns transparent huge pages off for this process (and what it starts). With them on, the
/// kernel's khugepaged merges the allocator's regions into 2 MiB pages again after the
/// allocator has given part of them back: the buffers of 5 000 closed event streams were
/// resident again within 90 s of their closing, and every idle stream cost twice its size.
fn disable_transparent_huge_pages() {
    #[cfg(target_os = "linux")]
    if let Err(e) = nix::sys::prctl::set_thp_disable(true) {
        tracing::warn!(error = %e, "transparent huge pages left on: freed memory may become resident again");
    }
}

/// Makes ring the process's TLS crypto provider (rustls), where none is yet: the HTTP clients
/// built without their own TLS configuration (the span exporter, the tests' clients) use it.
/// The webhook sender configures its own, with the same provider.
pub fn install_tls_provider() {
    // Err only when a provider is installed already, which is what is wanted.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A connection to NATS, its JetStream context and the deployment's namespace, with every
/// stream created or brought up to date.
pub struct Broker {
    pub client: async_nats::Client,
    pub jetstream: jetstream::Context,
    pub namespace: Namespace,
}

impl Broker {
    /// Connects as `name` (see [`nats::connect`]) and provisions every stream of the namespace.
    pub async fn connect(config: &Config, name: &str) -> crate::Result<Self> {
        let client = nats::connect(config, name).await?;
        let jetstream = jetstream::new(client.clone());
        let namespace = Namespace::new(config.nats_namespace.clone());
        nats::provision_streams(
            &jetstream,
            &namespace,
            config.nats_stream_replicas,
            &config.nats_stream_limits,
        )
        .await?;
        Ok(Broker {
            client,
            jetstream,
            namespace,
        })
    }
}

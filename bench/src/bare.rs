//! A bare axum server on a runtime of its own, like a separate server process: the baselines
//! the api is measured against.

use crate::setup::Api;
use std::sync::Arc;
use std::thread::JoinHandle;
use tokio::sync::oneshot;

/// A running bare server; [`Bare::stop`] ends it.
pub struct Bare {
    /// The server, addressed as the api is (its routes under `/api/v1`), through `http`.
    pub api: Arc<Api>,
    stop: oneshot::Sender<()>,
    thread: JoinHandle<anyhow::Result<()>>,
}

impl Bare {
    /// Serves `app` on a free port of 127.0.0.1 from a multi-threaded runtime on a thread of
    /// its own; clients reach it through `http`.
    pub fn start(app: axum::Router, http: reqwest::Client) -> anyhow::Result<Self> {
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        std_listener.set_nonblocking(true)?;
        let addr = std_listener.local_addr()?;
        let (stop, stopped) = oneshot::channel::<()>();
        let thread = std::thread::spawn(move || -> anyhow::Result<()> {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(std_listener)?;
                axum::serve(listener, app)
                    .with_graceful_shutdown(async move {
                        let _ = stopped.await;
                    })
                    .await?;
                Ok(())
            })
        });
        Ok(Bare {
            api: Arc::new(Api::new(&format!("http://{addr}"), http)),
            stop,
            thread,
        })
    }

    /// Stops serving and waits for the server's thread to end.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        let thread = self.thread;
        let _ = tokio::task::spawn_blocking(move || thread.join()).await;
    }
}

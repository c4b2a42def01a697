//! The reference backend's connection loop (SPEC S3): accepts on its listener, bounds the
//! connections served at once (a semaphore; more wait in the kernel's backlog), terminates
//! TLS with rustls when configured (the handshake bounded by the header-read timeout),
//! and serves each connection with hyper's HTTP/1 server: request headers must arrive
//! within `link.header_read_timeout_ms` (slowloris), and a connection that moves no byte
//! for `link.idle_timeout_ms` is closed. A misbehaving connection only costs its own task.
//! The router (and its gate, `link_auth`) is the same one tests drive in process.

use std::io;
use std::path::Path;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

use super::link_config::LinkConfig;
use super::MerchantError;

/// The rustls acceptor of `link.tls` (certificate chain and key, PEM).
pub fn tls_acceptor(cert_file: &Path, key_file: &Path) -> Result<TlsAcceptor, MerchantError> {
    let bad = |f: &str, p: &Path, e: String| MerchantError::Config(format!("link.tls.{f} {}: {e}", p.display()));
    let certs = CertificateDer::pem_file_iter(cert_file)
        .map_err(|e| bad("cert_file", cert_file, e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad("cert_file", cert_file, e.to_string()))?;
    if certs.is_empty() {
        return Err(bad("cert_file", cert_file, "no certificate".into()));
    }
    // Never the key's bytes in an error: only what went wrong.
    let key = PrivateKeyDer::from_pem_file(key_file)
        .map_err(|_| bad("key_file", key_file, "no usable private key".into()))?;
    let provider = Arc::new(tokio_rustls::rustls::crypto::aws_lc_rs::default_provider());
    let cfg = tokio_rustls::rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| MerchantError::Config(format!("link.tls: {e}")))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| MerchantError::Config(format!("link.tls: certificate and key do not go together: {e}")))?;
    Ok(TlsAcceptor::from(Arc::new(cfg)))
}

/// Serves `app` on `listener` until the task is dropped.
pub async fn serve(listener: TcpListener, app: Router, link: LinkConfig, tls: Option<TlsAcceptor>) {
    let slots = Arc::new(Semaphore::new(link.max_connections));
    loop {
        let permit = slots.clone().acquire_owned().await.expect("the semaphore is never closed");
        let (stream, peer) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                // EMFILE and friends: wait a little instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        // The peer address, as `axum::serve` with connect info gives it (B5 device_ip).
        let app = app.clone().layer(axum::Extension(axum::extract::ConnectInfo(peer)));
        let (link, tls) = (link.clone(), tls.clone());
        tokio::spawn(async move {
            let _permit = permit;
            let started = Instant::now();
            let seen = Arc::new(AtomicU64::new(0));
            let io = Idle { inner: stream, seen: seen.clone(), started };
            let result = match tls {
                Some(acceptor) => match tokio::time::timeout(link.header_read_timeout(), acceptor.accept(io)).await {
                    Ok(Ok(s)) => connection(s, app, &link, seen, started).await,
                    Ok(Err(e)) => {
                        tracing::debug!(%peer, error = %e, "TLS handshake refused");
                        return;
                    }
                    Err(_) => {
                        tracing::debug!(%peer, "TLS handshake timed out");
                        return;
                    }
                },
                None => connection(io, app, &link, seen, started).await,
            };
            if let Err(e) = result {
                tracing::debug!(%peer, reason = %e, "connection closed");
            }
        });
    }
}

async fn connection<S>(
    io: S,
    app: Router,
    link: &LinkConfig,
    seen: Arc<AtomicU64>,
    started: Instant,
) -> Result<(), String>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut b = hyper::server::conn::http1::Builder::new();
    b.timer(TokioTimer::new())
        .header_read_timeout(link.header_read_timeout())
        .keep_alive(true)
        // Our own limits answer first (`link_auth`); the parser's cap sits well above.
        .max_buf_size((link.max_header_bytes + link.max_uri_bytes).max(64 * 1024) * 4);
    let conn = b.serve_connection(TokioIo::new(io), TowerToHyperService::new(app));
    tokio::pin!(conn);
    let idle = link.idle_timeout();
    loop {
        let last = Duration::from_millis(seen.load(Ordering::Relaxed));
        let deadline = started + last + idle;
        tokio::select! {
            r = conn.as_mut() => return r.map_err(|e| e.to_string()),
            _ = tokio::time::sleep_until(deadline.into()) => {
                let last = Duration::from_millis(seen.load(Ordering::Relaxed));
                if started.elapsed() >= last + idle {
                    conn.as_mut().graceful_shutdown();
                    // A peer that does not even read our close gets dropped.
                    return match tokio::time::timeout(Duration::from_secs(1), conn.as_mut()).await {
                        Ok(r) => r.map_err(|e| e.to_string()),
                        Err(_) => Err("idle".into()),
                    };
                }
            }
        }
    }
}

/// A stream that records when it last moved a byte (milliseconds since `started`).
struct Idle<S> {
    inner: S,
    seen: Arc<AtomicU64>,
    started: Instant,
}

impl<S> Idle<S> {
    fn touch(&self) {
        self.seen.store(self.started.elapsed().as_millis() as u64, Ordering::Relaxed);
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Idle<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.touch();
        }
        r
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Idle<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, b: &[u8]) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, b);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.touch();
        }
        r
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

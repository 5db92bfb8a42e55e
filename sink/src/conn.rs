//! Serving connections: hyper's HTTP/1.1 connection for most, a lean one for event streams.
//!
//! Why two: an idle SSE stream is mostly connection. hyper's HTTP/1 connection reserves an
//! 8 KiB read buffer and an 8 KiB head-write buffer per connection (`INIT_BUFFER_SIZE`, which
//! its builder cannot lower), about 10 KiB of an idle stream's 11.3 KiB. A stream needs neither
//! once its response head is out: it only writes chunks and watches for the client going away.
//!
//! So a connection whose *first* request opens an event stream is served here: a `GET` to a
//! path ending in `/events`, HTTP/1.1, no body, nothing sent after it, a head under
//! [`LEAN_HEAD_MAX`]. The head is read into a small buffer and parsed with `httparse` (hyper's
//! own parser); the request then goes through the same router as every other request (auth,
//! handlers, headers), so what a stream answers does not depend on the path it took. The
//! response is written with `date:`, `connection: close` and chunked framing (or a
//! `content-length` when the body's size is known), and the connection closes after it: a
//! stream's connection carries one response anyway. While the body has nothing to send, the
//! socket is watched for the client closing, which drops the body and with it the stream's
//! state and its place under the limits, as hyper does.
//!
//! Everything else — other requests, a head that does not parse, a pipelined request, an
//! event stream asked for on a connection that already served a request — goes to hyper with
//! the bytes already read put back in front ([`Rewind`]), so hyper answers it as before,
//! including its errors for malformed requests.

use std::convert::Infallible;
use std::io::{self, IoSlice};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use crate::http::PeerAddr;

/// The largest request head the lean path reads; a longer one goes to hyper (whose own limit
/// is far larger).
pub const LEAN_HEAD_MAX: usize = 8 * 1024;

/// How long a client may take to send its first request head (hyper's `header_read_timeout`
/// for the requests after it).
const HEAD_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// At most this many request headers are parsed on the lean path; more go to hyper.
const LEAN_MAX_HEADERS: usize = 32;

type Io = Pin<Box<tokio_io_timeout::TimeoutStream<TcpStream>>>;

/// Accepts connections and serves each (see the module doc). On `stop` it stops accepting,
/// closes connections still sending their first request, asks hyper's connections to close
/// after their current response (SSE streams end on the same signal, lean or not), and waits
/// up to 10 s for every connection.
///
/// A connection whose client accepts no bytes for `write_timeout` while the server has some to
/// send is closed: an SSE client that stopped reading (its socket buffers full) would otherwise
/// hold its connection, its place under the stream limits and its stream's state forever. The
/// client resumes with `Last-Event-ID`.
pub async fn serve(
    listener: TcpListener,
    app: axum::Router,
    stop: CancellationToken,
    max_connections: usize,
    write_timeout: Duration,
) {
    use hyper_util::server::graceful::GracefulShutdown;

    let graceful = GracefulShutdown::new();
    // Each open connection holds a clone: the strong count is the number open, plus one.
    let connections = Arc::new(());
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(HEAD_READ_TIMEOUT);
    let http = Arc::new(http);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stop.cancelled() => break,
        };
        let _ = stream.set_nodelay(true);
        // One over the limit: answer its first request with 503 and close it.
        if Arc::strong_count(&connections) > max_connections {
            refuse(stream);
            continue;
        }
        let held = connections.clone();
        let mut io = tokio_io_timeout::TimeoutStream::new(stream);
        io.set_write_timeout(Some(write_timeout));
        let conn = Connection {
            io: Box::pin(io),
            peer,
            app: app.clone(),
            http: http.clone(),
            graceful: graceful.watcher(),
            stop: stop.clone(),
        };
        tokio::spawn(async move {
            conn.serve().await;
            drop(held);
        });
    }
    drop(listener);
    let drained = async {
        graceful.shutdown().await;
        // Lean connections end with their stream, which ends on `stop`.
        while Arc::strong_count(&connections) > 1 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    if tokio::time::timeout(Duration::from_secs(10), drained)
        .await
        .is_err()
    {
        tracing::warn!("connections still open after 10 s; closing them");
    }
}

/// Answers a connection over `max_connections` with 503 and closes it.
fn refuse(stream: TcpStream) {
    let refuse = hyper::service::service_fn(|_req| async {
        Ok::<_, Infallible>(connection_limit_response())
    });
    let mut once = hyper::server::conn::http1::Builder::new();
    once.keep_alive(false)
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(5));
    let conn = once.serve_connection(TokioIo::new(stream), refuse);
    tokio::spawn(async move {
        let _ = conn.await;
    });
}

/// The answer to a connection over `max_connections`.
fn connection_limit_response() -> hyper::Response<Body> {
    let mut r = hyper::Response::new(Body::from(
        r#"{"error":"this sink has its maximum of open connections (TUMBLEWEED_MAX_CONNECTIONS); retry later or through another replica"}"#,
    ));
    *r.status_mut() = hyper::StatusCode::SERVICE_UNAVAILABLE;
    let h = r.headers_mut();
    h.insert(
        hyper::header::RETRY_AFTER,
        hyper::header::HeaderValue::from(5u32),
    );
    h.insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    r
}

/// One accepted connection, before its first request is read.
struct Connection {
    io: Io,
    peer: SocketAddr,
    app: axum::Router,
    http: Arc<hyper::server::conn::http1::Builder>,
    graceful: hyper_util::server::graceful::Watcher,
    /// The server is stopping: a connection still sending its first request is closed, as
    /// hyper closes its idle connections.
    stop: CancellationToken,
}

impl Connection {
    async fn serve(mut self) {
        // Boxed, so the buffer and the parsing do not size the long-lived task.
        let reading = Box::pin(tokio::time::timeout(
            HEAD_READ_TIMEOUT,
            read_first_head(&mut self.io),
        ));
        let first = tokio::select! {
            first = reading => first,
            _ = self.stop.cancelled() => return,
        };
        let read = match first {
            Ok(Ok(read)) => read,
            // Timed out, closed or failed before a whole head: nothing to answer.
            Ok(Err(_)) | Err(_) => return,
        };
        match read {
            FirstHead::Lean(mut req) => {
                req.extensions_mut().insert(PeerAddr(self.peer));
                let _ = serve_lean(&mut self.io, self.app, req).await;
            }
            FirstHead::Hyper(prefix) => self.serve_hyper(prefix).await,
        }
    }

    /// Hands the connection to hyper with `prefix` (the bytes read so far) put back in front.
    async fn serve_hyper(self, prefix: Vec<u8>) {
        use hyper_util::service::TowerToHyperService;
        let peer = self.peer;
        // The peer's address goes into every request's extensions (shown for SSE streams).
        let service = TowerToHyperService::new(self.app.map_request(
            move |mut req: axum::http::Request<hyper::body::Incoming>| {
                req.extensions_mut().insert(PeerAddr(peer));
                req
            },
        ));
        let io = Rewind::new(prefix, self.io);
        let conn = self.http.serve_connection(TokioIo::new(io), service);
        let _ = Box::pin(self.graceful.watch(conn)).await;
    }
}

/// What the first request head calls for.
enum FirstHead {
    /// An event stream request, ready for the router (boxed: it is large, and moved on at
    /// once).
    Lean(Box<axum::http::Request<Body>>),
    /// Anything else: hyper serves the connection, starting with these bytes.
    Hyper(Vec<u8>),
}

/// Reads until the first request head is complete (or is known to be hyper's), into a buffer
/// that starts small: a stream's request head is a few hundred bytes.
async fn read_first_head(io: &mut Io) -> io::Result<FirstHead> {
    let mut buf = Vec::with_capacity(1024);
    loop {
        if buf.len() == buf.capacity() {
            if buf.len() >= LEAN_HEAD_MAX {
                return Ok(FirstHead::Hyper(buf));
            }
            buf.reserve(buf.len());
        }
        if io.read_buf(&mut buf).await? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        match classify(&buf) {
            Parsed::Partial => {}
            Parsed::Lean(req) => return Ok(FirstHead::Lean(req)),
            Parsed::Hyper => return Ok(FirstHead::Hyper(buf)),
        }
    }
}

/// What the bytes read so far hold.
enum Parsed {
    /// Not yet a whole head.
    Partial,
    Lean(Box<axum::http::Request<Body>>),
    Hyper,
}

fn classify(buf: &[u8]) -> Parsed {
    let mut headers = [httparse::EMPTY_HEADER; LEAN_MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(buf) {
        Ok(httparse::Status::Partial) => Parsed::Partial,
        Ok(httparse::Status::Complete(len)) => match lean_request(&req, len == buf.len()) {
            Some(lean) => Parsed::Lean(Box::new(lean)),
            None => Parsed::Hyper,
        },
        // Malformed, or too many headers: hyper answers it.
        Err(_) => Parsed::Hyper,
    }
}

/// The request as the router takes it, when it is one the lean path serves.
fn lean_request(req: &httparse::Request, alone: bool) -> Option<axum::http::Request<Body>> {
    let path = req.path?;
    let route = path.split('?').next().unwrap_or(path);
    if !alone
        || req.method != Some("GET")
        || req.version != Some(1)
        || !path.starts_with('/')
        || !route.ends_with("/events")
    {
        return None;
    }
    let mut out = axum::http::Request::builder()
        .method(axum::http::Method::GET)
        .uri(path)
        .version(axum::http::Version::HTTP_11);
    for h in req.headers.iter() {
        let is = |name: &str| h.name.eq_ignore_ascii_case(name);
        // A body, an upgrade or an expectation: hyper knows what to do with them.
        if is("transfer-encoding")
            || is("upgrade")
            || is("expect")
            || (is("content-length") && h.value != b"0")
        {
            return None;
        }
        out = out.header(h.name, h.value);
    }
    out.body(Body::empty()).ok()
}

/// Serves `req` through `app` and writes the response; the connection closes after it.
async fn serve_lean(
    io: &mut Io,
    app: axum::Router,
    req: Box<axum::http::Request<Body>>,
) -> io::Result<()> {
    let response = match Box::pin(app.oneshot(*req)).await {
        Ok(r) => r,
        Err(never) => match never {},
    };
    let (parts, mut body) = response.into_parts();
    let length = http_body::Body::size_hint(&body).exact();
    io.write_all(&response_head(&parts, length)).await?;
    let mut probe = [0u8; 16];
    loop {
        let frame = tokio::select! {
            biased;
            frame = body.frame() => frame,
            read = io.read(&mut probe) => match read {
                // The client went away: dropping the body ends the stream.
                Ok(0) | Err(_) => return Ok(()),
                // Bytes after the request (it was alone when read): ignored, since the
                // connection closes after this response.
                Ok(_) => continue,
            },
        };
        match frame {
            None => break,
            // The body failed: close without the last chunk, so the client sees it cut short.
            Some(Err(_)) => return Ok(()),
            Some(Ok(frame)) => {
                let Ok(data) = frame.into_data() else {
                    continue; // trailers: none of ours has any
                };
                if data.is_empty() {
                    continue;
                }
                if length.is_some() {
                    io.write_all(&data).await?;
                } else {
                    write_chunk(io, &data).await?;
                }
            }
        }
    }
    if length.is_none() {
        io.write_all(b"0\r\n\r\n").await?;
    }
    io.shutdown().await
}

/// The status line and headers: the handler's, less those about framing and the connection,
/// which are the connection's to set.
fn response_head(parts: &axum::http::response::Parts, length: Option<u64>) -> Vec<u8> {
    use std::io::Write;
    let mut head = Vec::with_capacity(512);
    let status = parts.status;
    let _ = write!(
        head,
        "HTTP/1.1 {} {}\r\n",
        status.as_str(),
        status.canonical_reason().unwrap_or("")
    );
    for (name, value) in parts.headers.iter() {
        use axum::http::header::{CONNECTION, CONTENT_LENGTH, DATE, TRANSFER_ENCODING};
        if [CONNECTION, CONTENT_LENGTH, TRANSFER_ENCODING, DATE].contains(name) {
            continue;
        }
        head.extend_from_slice(name.as_str().as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(value.as_bytes());
        head.extend_from_slice(b"\r\n");
    }
    let _ = write!(
        head,
        "date: {}\r\nconnection: close\r\n",
        httpdate::fmt_http_date(std::time::SystemTime::now())
    );
    match length {
        Some(n) => {
            let _ = write!(head, "content-length: {n}\r\n\r\n");
        }
        None => head.extend_from_slice(b"transfer-encoding: chunked\r\n\r\n"),
    }
    head
}

/// Writes `data` as one chunk (size line, data, CRLF) in as few writes as the socket allows.
async fn write_chunk(io: &mut Io, data: &Bytes) -> io::Result<()> {
    use std::io::Write;
    let mut size = [0u8; 20];
    let size_len = {
        let mut at = &mut size[..];
        write!(at, "{:x}\r\n", data.len())?;
        20 - at.len()
    };
    let mut parts = [
        IoSlice::new(&size[..size_len]),
        IoSlice::new(data),
        IoSlice::new(b"\r\n"),
    ];
    let mut bufs = &mut parts[..];
    while !bufs.is_empty() {
        let n = io.write_vectored(bufs).await?;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        IoSlice::advance_slices(&mut bufs, n);
    }
    Ok(())
}

/// An IO whose reads return `prefix` first: the bytes read before the connection was handed
/// to hyper.
struct Rewind<T> {
    prefix: Option<Bytes>,
    inner: T,
}

impl<T> Rewind<T> {
    fn new(prefix: Vec<u8>, inner: T) -> Self {
        let prefix = (!prefix.is_empty()).then(|| Bytes::from(prefix));
        Self { prefix, inner }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Rewind<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if let Some(prefix) = self.prefix.as_mut() {
            let n = prefix.len().min(buf.remaining());
            buf.put_slice(&prefix.split_to(n));
            if prefix.is_empty() {
                self.prefix = None;
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Rewind<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
#[path = "conn_tests.rs"]
mod tests;

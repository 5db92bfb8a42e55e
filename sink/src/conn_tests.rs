//! The two connection paths of `conn.rs`, over real sockets: which requests take the lean
//! path, what it writes, that it lets a stream go when the client does, and that everything
//! else is still hyper's (keep-alive, bodies, pipelining, malformed and oversize heads).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Extension, Router};
use futures::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use super::serve;
use crate::http::PeerAddr;

#[derive(Clone)]
struct TestState {
    dropped: Arc<AtomicBool>,
    stop: CancellationToken,
}

/// Sets its flag when dropped: tells when a response body was let go.
struct DropFlag(Arc<AtomicBool>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

fn event_stream(body: Body) -> axum::response::Response {
    ([("content-type", "text/event-stream")], body).into_response()
}

fn app(state: TestState) -> Router {
    Router::new()
        .route(
            "/t/{x}/events",
            get(|| async {
                let chunks = ["a\n", "bb\n", "ccc\n"].map(Ok::<_, std::io::Error>);
                event_stream(Body::from_stream(futures::stream::iter(chunks)))
            })
            .post(|body: String| async move { body }),
        )
        .route(
            "/peer/events",
            get(|Extension(PeerAddr(peer)): Extension<PeerAddr>| async move { peer.to_string() }),
        )
        .route(
            "/forever/events",
            get(|State(s): State<TestState>| async move {
                let flag = DropFlag(s.dropped.clone());
                let body = futures::stream::once(async { Ok::<_, std::io::Error>("hello\n") })
                    .chain(futures::stream::pending())
                    .map(move |c| {
                        let _ = &flag;
                        c
                    });
                event_stream(Body::from_stream(body))
            }),
        )
        .route(
            "/wait/events",
            get(|State(s): State<TestState>| async move {
                let stop = s.stop.clone();
                let body = futures::stream::once(async { Ok::<_, std::io::Error>("open\n") })
                    .chain(futures::stream::once(async move {
                        stop.cancelled().await;
                        Ok("bye\n")
                    }));
                event_stream(Body::from_stream(body))
            }),
        )
        .route("/other", get(|| async { "ok" }))
        .with_state(state)
}

struct Server {
    addr: SocketAddr,
    state: TestState,
    task: tokio::task::JoinHandle<()>,
}

async fn start() -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let state = TestState {
        dropped: Arc::new(AtomicBool::new(false)),
        stop: CancellationToken::new(),
    };
    let task = tokio::spawn(serve(
        listener,
        app(state.clone()),
        state.stop.clone(),
        100,
        Duration::from_secs(10),
    ));
    Server { addr, state, task }
}

/// A new connection that has sent `raw`.
async fn send(addr: SocketAddr, raw: &[u8]) -> TcpStream {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(raw).await.unwrap();
    s
}

/// Sends `raw` on a new connection and reads until the server closes it (at most 5 s).
async fn exchange(addr: SocketAddr, raw: &[u8]) -> String {
    read_to_close(&mut send(addr, raw).await).await
}

async fn read_to_close(s: &mut TcpStream) -> String {
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out))
        .await
        .unwrap_or_else(|_| {
            panic!(
                "the server did not close the connection; read so far: {}",
                String::from_utf8_lossy(&out)
            )
        })
        .unwrap();
    String::from_utf8(out).unwrap()
}

/// Reads until `needle` has arrived (at most 5 s); returns everything read.
async fn read_until(s: &mut TcpStream, needle: &str) -> String {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let found = tokio::time::timeout(Duration::from_secs(5), async {
        while !String::from_utf8_lossy(&out).contains(needle) {
            let n = s.read(&mut buf).await.unwrap();
            assert!(
                n > 0,
                "closed before {needle:?}: {}",
                String::from_utf8_lossy(&out)
            );
            out.extend_from_slice(&buf[..n]);
        }
    })
    .await;
    let text = String::from_utf8(out).unwrap();
    assert!(found.is_ok(), "no {needle:?} within 5 s: {text}");
    text
}

/// The head (lowercase) and the de-chunked body of one chunked response.
fn split_chunked(response: &str) -> (String, String) {
    let (head, mut rest) = response.split_once("\r\n\r\n").expect("a whole head");
    let mut body = String::new();
    loop {
        let (size, after) = rest.split_once("\r\n").expect("a chunk size line");
        let size = usize::from_str_radix(size, 16).expect("a hex chunk size");
        if size == 0 {
            assert_eq!(after, "\r\n", "the last chunk ends the response");
            break;
        }
        body.push_str(&after[..size]);
        assert_eq!(&after[size..size + 2], "\r\n");
        rest = &after[size + 2..];
    }
    (head.to_ascii_lowercase(), body)
}

#[tokio::test]
async fn a_stream_request_takes_the_lean_path_and_its_connection_closes_after_it() {
    let server = start().await;
    let response = exchange(
        server.addr,
        b"GET /t/x/events?since=1 HTTP/1.1\r\nHost: here\r\nAccept: text/event-stream\r\n\r\n",
    )
    .await;
    let (head, body) = split_chunked(&response);
    assert!(head.starts_with("http/1.1 200 ok\r\n"), "{head}");
    for line in [
        "content-type: text/event-stream",
        "connection: close",
        "transfer-encoding: chunked",
        "date: ",
    ] {
        assert!(head.contains(line), "{line:?} missing from {head}");
    }
    assert_eq!(body, "a\nbb\nccc\n");
}

#[tokio::test]
async fn the_lean_path_gives_handlers_the_peer_address_and_a_known_length() {
    let server = start().await;
    let mut s = send(
        server.addr,
        b"GET /peer/events HTTP/1.1\r\nHost: here\r\n\r\n",
    )
    .await;
    let me = s.local_addr().unwrap();
    let response = read_to_close(&mut s).await;
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    let head = head.to_ascii_lowercase();
    assert!(head.contains("connection: close"), "{head}");
    assert!(
        head.contains(&format!("content-length: {}", me.to_string().len())),
        "{head}"
    );
    assert_eq!(body, me.to_string());
}

#[tokio::test]
async fn a_client_that_goes_away_lets_its_stream_go() {
    let server = start().await;
    let mut s = send(
        server.addr,
        b"GET /forever/events HTTP/1.1\r\nHost: here\r\n\r\n",
    )
    .await;
    let text = read_until(&mut s, "hello").await;
    assert!(
        text.to_ascii_lowercase().contains("connection: close"),
        "{text}"
    );
    assert!(!server.state.dropped.load(Ordering::SeqCst));
    drop(s);
    let dropped = &server.state.dropped;
    let gone = crate::wait::until(
        Duration::from_secs(5),
        Duration::from_millis(10),
        || async { Ok::<_, ()>(dropped.load(Ordering::SeqCst)) },
        |gone| *gone,
    )
    .await;
    assert_eq!(
        gone,
        Ok(true),
        "the body of a stream whose client closed was not dropped"
    );
}

#[tokio::test]
async fn other_requests_stay_with_hyper() {
    let server = start().await;
    let addr = server.addr;

    // Keep-alive: two requests, then an event stream, on one connection.
    let mut s = send(addr, b"GET /other HTTP/1.1\r\nHost: here\r\n\r\n").await;
    read_until(&mut s, "\r\n\r\nok").await;
    s.write_all(b"GET /other HTTP/1.1\r\nHost: here\r\n\r\n")
        .await
        .unwrap();
    read_until(&mut s, "\r\n\r\nok").await;
    s.write_all(b"GET /t/x/events HTTP/1.1\r\nHost: here\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let (_, body) = split_chunked(&read_to_close(&mut s).await);
    assert_eq!(body, "a\nbb\nccc\n");

    // A body on the stream's path.
    let echoed = exchange(
        addr,
        b"POST /t/x/events HTTP/1.1\r\nHost: here\r\nContent-Length: 4\r\nConnection: close\r\n\r\nping",
    )
    .await;
    assert!(echoed.starts_with("HTTP/1.1 200 OK"), "{echoed}");
    assert!(echoed.ends_with("\r\n\r\nping"), "{echoed}");

    // HTTP/1.0: no chunked framing for it.
    let old = exchange(addr, b"GET /t/x/events HTTP/1.0\r\nHost: here\r\n\r\n").await;
    assert!(old.starts_with("HTTP/1.0 200 OK"), "{old}");
    assert!(old.ends_with("a\nbb\nccc\n"), "{old}");

    // Pipelined after a stream request: both are answered.
    let both = exchange(
        addr,
        b"GET /t/x/events HTTP/1.1\r\nHost: here\r\n\r\nGET /other HTTP/1.1\r\nHost: here\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(both.contains("3\r\nbb\n\r\n"), "{both}");
    assert!(both.ends_with("\r\n\r\nok"), "{both}");

    // A head longer than the lean path reads.
    let long = format!(
        "GET /t/x/events HTTP/1.1\r\nHost: here\r\nX-Long: {}\r\nConnection: close\r\n\r\n",
        "x".repeat(super::LEAN_HEAD_MAX)
    );
    let (head, body) = split_chunked(&exchange(addr, long.as_bytes()).await);
    assert!(head.starts_with("http/1.1 200 ok"), "{head}");
    assert_eq!(body, "a\nbb\nccc\n");

    // A malformed head: hyper's 400.
    let bad = exchange(addr, b"GET /t/x/events HTTP/1.1\r\nno colon here\r\n\r\n").await;
    assert!(bad.starts_with("HTTP/1.1 400"), "{bad}");
}

#[tokio::test]
async fn stopping_waits_for_lean_streams_to_end() {
    let server = start().await;
    let mut s = send(
        server.addr,
        b"GET /wait/events HTTP/1.1\r\nHost: here\r\n\r\n",
    )
    .await;
    read_until(&mut s, "open").await;
    server.state.stop.cancel();
    let rest = read_to_close(&mut s).await;
    assert!(rest.contains("bye\n"), "{rest}");
    assert!(rest.ends_with("0\r\n\r\n"), "{rest}");
    tokio::time::timeout(Duration::from_secs(5), server.task)
        .await
        .expect("serve returns once the stream ended")
        .unwrap();
}

#[tokio::test]
async fn stopping_closes_a_connection_still_sending_its_first_request() {
    let server = start().await;
    let mut s = send(server.addr, b"GET /t/x/events HTTP/1.1\r\nHost: he").await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    server.state.stop.cancel();
    let started = std::time::Instant::now();
    tokio::time::timeout(Duration::from_secs(5), server.task)
        .await
        .expect("serve returns without waiting for the head")
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(read_to_close(&mut s).await, "", "closed without an answer");
}

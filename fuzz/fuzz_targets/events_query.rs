//! The query string of the events endpoints (`?ticket=`, `?token=`, `?last_event_id=`,
//! `?start=`), parsed exactly as the handlers do (axum's `Query` extractor into the sink's
//! `EventsQuery`), then the resume id decoded as a cursor. Nothing may panic; a parse that
//! succeeds keeps the values the query gave.
#![no_main]

use axum::extract::Query;
use axum::http::Uri;
use libfuzzer_sys::fuzz_target;
use tumbleweed_sink::cursor;
use tumbleweed_sink::http::EventsQuery;

fuzz_target!(|data: &[u8]| {
    let Ok(query) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(uri) = format!("/v1/consumers/orders/events?{query}").parse::<Uri>() else {
        return;
    };
    let Ok(Query(q)) = Query::<EventsQuery>::try_from_uri(&uri) else {
        return;
    };
    if let Some(id) = q.last_event_id.as_deref() {
        let _ = cursor::decode(id, 0, 1);
        // What the handler decoded is what the query said (percent-decoding aside).
        if !query.contains('%') && !query.contains('+') {
            assert!(query.contains(id), "{id:?} not in {query:?}");
        }
    }
    if let Some(t) = q.ticket.as_deref() {
        if !query.contains('%') && !query.contains('+') {
            assert!(query.contains(t));
        }
    }
});

//! Hostile callers: memory. A tenant's request may cost the real binary about 4 times its size,
//! however its JSON is shaped (review H3), measured from `/proc/<pid>/status`.

use crate::helpers::provision;
use crate::helpers::*;
use wa_gateway::sim::{SimOptions, Simulator};

/// H3: a media send (the rows that may carry 16 MiB) padded with an array of 4 million numbers
/// is refused with 413 before a tree is built: three of them leave the gateway's resident
/// memory within 4x one body of where it was, and nothing reaches the upstream. Before the
/// bound, each built a `Value` of several hundred megabytes.
#[tokio::test]
async fn a_padded_media_body_costs_its_size_not_a_hundred_times_it() {
    let sim = Simulator::start(SimOptions {
        key: Some(UPSTREAM_KEY.to_owned()),
        ..SimOptions::default()
    })
    .await
    .unwrap();
    let db = TestDb::create().await;
    let vars = base_vars(&db, &sim.url());
    let process = GatewayProcess::start(&vars).await;
    let http = http_client();
    let created = provision(&http, &process.address, "acme", &["*"]).await;
    let key = created.api_key().to_owned();

    let head = br#"{"chatId":"1234567890@c.us","file":{"mimetype":"image/png","url":"https://example.com/a.png"},"pad":"#;
    let mut padded = head.to_vec();
    padded.push(b'[');
    padded.extend(std::iter::repeat_n(b"0,".as_slice(), 4_000_000).flatten());
    padded.extend_from_slice(b"0]}");
    // The same size as one string: what a body of this size costs when its shape is benign.
    let mut plain = head.to_vec();
    plain.push(b'"');
    plain.extend(std::iter::repeat_n(b'A', padded.len() - head.len() - 3));
    plain.extend_from_slice(b"\"}");
    let size_kib = padded.len() as u64 / 1024;

    let send = |body: Vec<u8>| {
        http.post(process.url("/v1/sendImage"))
            .header("x-api-key", &key)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    // The benign twin first, so the buffers a body of this size needs count in `warm`.
    let _ = send(plain).await.unwrap().status();
    let warm = process.rss_kib();
    let mut answers = Vec::new();
    for _ in 0..3 {
        let res = send(padded.clone()).await.unwrap();
        answers.push((res.status().as_u16(), res.text().await.unwrap()));
    }
    let after = process.rss_kib();
    eprintln!("body {size_kib} KiB; RSS {warm} KiB -> {after} KiB");
    assert!(
        after < warm + 4 * size_kib,
        "RSS grew from {warm} KiB to {after} KiB for bodies of {size_kib} KiB"
    );
    for (status, text) in &answers {
        assert_eq!(*status, 413, "{text}");
        assert!(text.contains("\"statusCode\":413"), "{text}");
    }
    let sends = sim_log_at(&sim.url())
        .await
        .into_iter()
        .filter(|call| call.to_string().contains("sendImage"))
        .count();
    assert_eq!(sends, 0, "a refused body reached the upstream");
    process.terminate().await;
    sim.stop().await;
}

//! A Server-Sent Events reader over reqwest, as a browser's `EventSource` parses the stream
//! (WHATWG HTML, "Interpreting an event stream"): blocks end at a blank line, `:` starts a
//! comment, `id:` sets the last event id even on a block with no data.

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use serde_json::Value;
use std::pin::Pin;
use std::time::Duration;

/// One block of the stream.
#[derive(Debug, Clone, Default)]
pub struct Block {
    pub id: Option<String>,
    pub event: Option<String>,
    pub data: Option<String>,
    pub comments: Vec<String>,
}

impl Block {
    /// The data as JSON (an event's envelope).
    pub fn json(&self) -> Value {
        serde_json::from_str(self.data.as_deref().expect("a block with data")).unwrap()
    }
}

pub struct SseStream {
    pub status: u16,
    pub content_type: String,
    body: Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>,
    buffer: String,
    /// The `id` of the last block that had one, as `EventSource.lastEventId`.
    pub last_id: Option<String>,
}

impl SseStream {
    pub async fn open(request: reqwest::RequestBuilder) -> Self {
        let res = request
            .header("accept", "text/event-stream")
            .send()
            .await
            .expect("the stream request was sent");
        let status = res.status().as_u16();
        let content_type = res
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        Self {
            status,
            content_type,
            body: Box::pin(res.bytes_stream()),
            buffer: String::new(),
            last_id: None,
        }
    }

    /// The rest of the body as text (an error answer).
    pub async fn text(mut self) -> String {
        while let Some(Ok(chunk)) = self.body.next().await {
            self.buffer.push_str(&String::from_utf8_lossy(&chunk));
        }
        self.buffer
    }

    /// The next block within `patience`; `None` when the stream ended (or nothing came).
    pub async fn block(&mut self, patience: Duration) -> Option<Block> {
        let deadline = tokio::time::Instant::now() + patience;
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let raw: String = self.buffer.drain(..end + 2).collect();
                let block = parse(&raw);
                if block.id.is_some() {
                    self.last_id = block.id.clone();
                }
                return Some(block);
            }
            let chunk = tokio::time::timeout_at(deadline, self.body.next()).await;
            match chunk {
                Ok(Some(Ok(bytes))) => self.buffer.push_str(&String::from_utf8_lossy(&bytes)),
                _ => return None,
            }
        }
    }

    /// The next `n` events (blocks with data), skipping comments and id-only blocks; fails
    /// the test if they do not all come within `patience`.
    pub async fn events(&mut self, n: usize, patience: Duration) -> Vec<Block> {
        let deadline = tokio::time::Instant::now() + patience;
        let mut events = Vec::new();
        while events.len() < n {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let block = self
                .block(left)
                .await
                .unwrap_or_else(|| panic!("{} of {n} events came: {events:?}", events.len()));
            if block.data.is_some() {
                events.push(block);
            }
        }
        events
    }

    /// Whether the server ends the stream within `patience` (blocks before the end are read
    /// and dropped); answers the comments it sent last.
    pub async fn ends_within(&mut self, patience: Duration) -> Option<Vec<String>> {
        let deadline = tokio::time::Instant::now() + patience;
        let mut last = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                return None;
            }
            let chunk = tokio::time::timeout(left, self.body.next()).await;
            match chunk {
                Ok(Some(Ok(bytes))) => {
                    self.buffer.push_str(&String::from_utf8_lossy(&bytes));
                    while let Some(end) = self.buffer.find("\n\n") {
                        let raw: String = self.buffer.drain(..end + 2).collect();
                        last = parse(&raw).comments;
                    }
                }
                Ok(_) => return Some(last),
                Err(_) => return None,
            }
        }
    }
}

fn parse(raw: &str) -> Block {
    let mut block = Block::default();
    for line in raw.lines() {
        if let Some(comment) = line.strip_prefix(':') {
            block.comments.push(comment.trim().to_owned());
            continue;
        }
        let (name, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value).to_owned();
        match name {
            "id" => block.id = Some(value),
            "event" => block.event = Some(value),
            "data" => {
                block.data = Some(match block.data.take() {
                    Some(before) => format!("{before}\n{value}"),
                    None => value,
                })
            }
            _ => {}
        }
    }
    block
}

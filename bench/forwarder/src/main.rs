//! A bare forwarder on the gateway's own stack (actix-web in, awc out), for `bench/proxy.sh`:
//! every request goes to the upstream with its method, path, query, body and content type, plus
//! the two headers the hosted API wants; the answer comes back with its status, content type
//! and body. No auth, no routing, no JSON: what is left is what the stack itself costs.
//!
//!   bare-forwarder LISTEN UPSTREAM_URL UPSTREAM_KEY UPSTREAM_HOST

use actix_web::http::header::CONTENT_TYPE;
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use std::time::Duration;

struct Upstream {
    base: String,
    key: String,
    host: String,
}

async fn forward(
    req: HttpRequest,
    body: web::Bytes,
    upstream: web::Data<Upstream>,
    client: web::Data<awc::Client>,
) -> HttpResponse {
    let url = format!("{}{}", upstream.base, req.uri());
    let mut outbound = client
        .request(req.method().clone(), url)
        .insert_header(("x-rapidapi-key", upstream.key.as_str()))
        .insert_header(("x-rapidapi-host", upstream.host.as_str()));
    if let Some(kind) = req.headers().get(CONTENT_TYPE) {
        outbound = outbound.insert_header((CONTENT_TYPE, kind.clone()));
    }
    let mut answer = match outbound.send_body(body).await {
        Ok(answer) => answer,
        Err(e) => return HttpResponse::BadGateway().body(e.to_string()),
    };
    let bytes = match answer.body().limit(16 << 20).await {
        Ok(bytes) => bytes,
        Err(e) => return HttpResponse::BadGateway().body(e.to_string()),
    };
    let mut out = HttpResponse::build(answer.status());
    if let Some(kind) = answer.headers().get(CONTENT_TYPE) {
        out.insert_header((CONTENT_TYPE, kind.clone()));
    }
    out.body(bytes)
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [listen, base, key, host] = <[String; 4]>::try_from(args).unwrap_or_else(|_| {
        eprintln!("usage: bare-forwarder LISTEN UPSTREAM_URL UPSTREAM_KEY UPSTREAM_HOST");
        std::process::exit(2)
    });
    let upstream = web::Data::new(Upstream {
        base: base.trim_end_matches('/').to_owned(),
        key,
        host,
    });
    // The same pool bound as the gateway's upstream client is given, so both are measured
    // with the same number of calls in flight.
    let limit: usize = std::env::var("FORWARDER_MAX_CONNECTIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024);
    HttpServer::new(move || {
        let connector = awc::Connector::new().limit(limit);
        let client = awc::Client::builder()
            .connector(connector)
            .timeout(Duration::from_secs(30))
            .disable_redirects()
            .finish();
        App::new()
            .app_data(upstream.clone())
            .app_data(web::Data::new(client))
            .default_service(web::to(forward))
    })
    .bind(listen)?
    .run()
    .await
}
